"""Dockerfile and docker-compose.yml: valid, in step with Settings, and a health check that works.

Docker itself cannot run here; the compose file is checked against the Compose specification
(check-jsonschema's vendored schema, offline) and each health check command is run for real
against a live server.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
import shlex
import sys
from pathlib import Path
from typing import Any

import orjson
from ruamel.yaml import YAML

from rpcsvc.config import ENV_PREFIX, Settings
from tests.conftest import Service

ROOT = Path(__file__).parents[1]
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
SETTING_NAMES = {ENV_PREFIX + f.name.upper() for f in dataclasses.fields(Settings)}
_INTERPOLATION = re.compile(r"\$\{(\w+)(?::-([^}]*))?\}")


def _compose() -> dict[str, Any]:
    return dict(YAML(typ="safe").load(COMPOSE.read_text()))


def _interpolate(value: str, environ: dict[str, str]) -> str:
    """Compose's ``${NAME:-default}`` with ``environ`` as the shell."""
    return _INTERPOLATION.sub(lambda m: environ.get(m.group(1)) or m.group(2) or "", value)


def _dockerfile() -> list[tuple[str, str]]:
    """(instruction, arguments) pairs, continuation lines joined."""
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())
    lines = [line.strip() for line in text.splitlines()]
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1])
        for line in lines
        if line and not line.startswith("#")
    ]


async def _run(*command: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        *command,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env=env,
    )
    output, _ = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, output.decode()


async def test_compose_file_follows_the_compose_specification() -> None:
    command = [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec"]
    code, output = await _run(*command, str(COMPOSE))
    assert (code, output.strip()) == (0, "ok -- validation done")


async def test_compose_schema_check_catches_a_mistake(tmp_path: Path) -> None:
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(COMPOSE.read_text().replace("healthcheck:", "healthchek:"))
    command = [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec"]
    code, output = await _run(*command, str(broken))
    assert code == 1
    assert "'healthchek' was unexpected" in output


def test_compose_environment_is_made_of_real_settings() -> None:
    service = _compose()["services"]["rpcsvc"]
    environment = {k: str(v) for k, v in service["environment"].items()}
    assert set(environment) <= SETTING_NAMES, set(environment) - SETTING_NAMES
    # Unset in the shell: the container's own defaults, everything else as the service's
    settings = Settings.from_env({k: _interpolate(v, {}) for k, v in environment.items()})
    defaults = Settings()
    container = {
        "host": "0.0.0.0",
        "port": 8080,
        "log_format": "json",
        "state_file": Path("/data/tasks.sqlite3"),
    }
    assert dataclasses.asdict(settings) == {**dataclasses.asdict(defaults), **container}
    # Set in the shell: passed through
    shell = {"RPCSVC_TOKEN": "s3cret", "RPCSVC_WORKERS": "3", "RPCSVC_LOG_FORMAT": "text"}
    settings = Settings.from_env({k: _interpolate(v, shell) for k, v in environment.items()})
    assert (settings.token, settings.workers, settings.log_format) == ("s3cret", 3, "text")
    # The port published is the one the service listens on, and data lands on the volume
    assert service["ports"] == ["${RPCSVC_PUBLISH:-127.0.0.1:8080}:8080"]
    assert service["volumes"] == ["rpcsvc-data:/data"]


def test_dockerfile_builds_from_the_repository_and_runs_serve() -> None:
    instructions = _dockerfile()
    base = next(args for op, args in instructions if op == "FROM")
    assert re.fullmatch(r"python:3\.(1[1-9])-slim", base), base
    for op, args in instructions:
        if op == "COPY":
            *sources, _ = args.split()
            for source in sources:
                assert (ROOT / source).exists(), f"COPY {source}: not in the repository"
        if op == "ENV":
            for name in re.findall(r"(RPCSVC_\w+)=", args):
                assert name in SETTING_NAMES, name
    assert ("CMD", '["rpcsvc", "serve"]') in instructions
    assert ("EXPOSE", "8080") in instructions


async def test_health_checks_pass_on_a_ready_server_and_fail_on_none(service: Service) -> None:
    port = str(service.http.port)
    compose_check = _compose()["services"]["rpcsvc"]["healthcheck"]["test"]
    assert compose_check[0] == "CMD"
    compose_command = [
        sys.executable if w == "python" else w.replace("8080", port) for w in compose_check[1:]
    ]
    docker_args = next(args for op, args in _dockerfile() if op == "HEALTHCHECK")
    docker_check = orjson.loads(docker_args.split("CMD", 1)[1])
    docker_command = [sys.executable if w == "python" else w for w in docker_check]
    assert "--interval=10s" in shlex.split(docker_args)

    for command in (compose_command, docker_command):
        code, output = await _run(*command, env={"RPCSVC_PORT": port})
        assert (code, output) == (0, "")
    # Against a port where nothing listens, both fail
    closed = [w.replace(port, "9") for w in compose_command]
    assert (await _run(*closed))[0] != 0
    assert (await _run(*docker_command, env={"RPCSVC_PORT": "9"}))[0] != 0
