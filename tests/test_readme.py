"""The README tells the truth: its test command, settings, errors, methods and task types."""

from __future__ import annotations

import re
from pathlib import Path

from rpcsvc import errors
from rpcsvc.config import settings_table
from rpcsvc.tasktypes import builtin_registry
from tests.conftest import Service

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_ci_runs_the_readme_test_command() -> None:
    block = README.split("<!-- test-command -->", 1)[1]
    readme_command = block.split("```sh\n", 1)[1].split("\n", 1)[0]
    ci = (ROOT / ".ci" / "run").read_text().split("# README test command:\n", 1)[1]
    ci_command = ci.strip().splitlines()[0]
    assert ci_command == readme_command.replace("pip install -e", "pip install -q -e")


def test_configuration_table_is_the_settings() -> None:
    assert settings_table() in README


def test_every_error_code_is_documented() -> None:
    for cls in errors.application_errors():
        assert re.search(rf"^\| {cls.code} \| `{cls.__name__}` \|", README, re.M), cls.__name__


def test_every_task_type_has_a_section() -> None:
    for task_type in builtin_registry():
        assert f"### `{task_type.name}`" in README, task_type.name


async def test_method_table_matches_rpc_discover(service: Service) -> None:
    document = await service.rpc.call("rpc.discover")
    discovered = {m["name"] for m in document["methods"]}
    documented = set(re.findall(r"^\| `([a-z]+\.[a-z_]+)` \|", README, re.M))
    assert documented == discovered - {"rpc.discover"}
