"""Settings from the environment and the command line, and `rpcsvc serve` on a real port."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from rpcsvc.client import RpcClient
from rpcsvc.config import Settings
from rpcsvc.errors import ConfigError


def test_defaults_are_safe_for_a_newcomer() -> None:
    settings = Settings.from_env({})
    assert (settings.host, settings.port, settings.workers) == ("127.0.0.1", 8080, os.cpu_count())
    assert settings.token is None and settings.state_file is None and not settings.debug_tasks


def test_environment_then_command_line() -> None:
    env = {"RPCSVC_PORT": "9000", "RPCSVC_WORKERS": "3", "RPCSVC_HOST": "0.0.0.0"}
    settings = Settings.from_env(env, workers="5")
    assert (settings.host, settings.port, settings.workers) == ("0.0.0.0", 9000, 5)


@pytest.mark.parametrize(
    ("env", "overrides", "message"),
    [
        ({"RPCSVC_PORT": "http"}, {}, "RPCSVC_PORT='http': not a valid value"),
        ({}, {"port": "99999"}, "--port='99999': must be between 0 and 65535"),
        ({"RPCSVC_WORKERS": "0"}, {}, "RPCSVC_WORKERS='0': must be at least 1"),
        ({}, {"log_format": "xml"}, "--log-format='xml': must be 'text' or 'json'"),
        ({"RPCSVC_RESULT_TTL": "-5"}, {}, "RPCSVC_RESULT_TTL='-5': must be a number >= 0"),
    ],
)
def test_bad_values_name_the_setting(
    env: dict[str, str], overrides: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError) as info:
        Settings.from_env(env, **overrides)
    assert str(info.value).startswith(message)


def test_serve_with_a_bad_value_prints_one_line() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "rpcsvc.cli", "serve", "--workers", "many"],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "RPCSVC_PORT": "8080"},
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "rpcsvc: bad setting: --workers='many': not a valid value "
        "(invalid literal for int() with base 10: 'many')"
    ]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_serve_on_a_real_port(tmp_path: Path) -> None:
    # Given `rpcsvc serve` started from the environment, as the README says
    port = _free_port()
    env = {
        **os.environ,
        "RPCSVC_PORT": str(port),
        "RPCSVC_WORKERS": "1",
        "RPCSVC_LOG_LEVEL": "info",
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "rpcsvc.cli", "serve", env=env, stderr=asyncio.subprocess.PIPE
    )
    try:
        # When it says it listens (we wait on its log line, not on a timer)
        assert proc.stderr is not None
        while b"listening on" not in (line := await proc.stderr.readline()):
            assert line, "server exited before listening"
        # Then it is healthy and answers JSON-RPC with real workers
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{port}/healthz") as response:
                assert response.status == 200
                health = await response.json()
            assert health["status"] == "ok" and health["workers"] == 1
            rpc = RpcClient(f"http://127.0.0.1:{port}/rpc", session=session)
            task = await rpc.run("analyze_content", {"texts": ["Good news for voters"]})
            assert task["status"] == "completed"
            assert task["result"]["posts"][0]["label"] == "positive"
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 30)
