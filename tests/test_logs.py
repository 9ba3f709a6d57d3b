"""Task transition logs: one line per transition, as text or as JSON for log shippers."""

from __future__ import annotations

import asyncio
import io
import logging
import re
import signal
import socket
import sys
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from rpcsvc.client import RpcClient
from rpcsvc.logs import BatchingStreamHandler, JsonFormatter, add_task_fields
from tests.conftest import Service


def _task_lines(records: list[logging.LogRecord], task_id: str) -> list[logging.LogRecord]:
    return [r for r in records if r.name == "rpcsvc.tasks" and task_id in r.getMessage()]


async def test_one_line_per_transition_with_id_type_and_duration(
    service: Service, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="rpcsvc.tasks")
    # Given a task that is created, started and completed
    done = await service.rpc.run("analyze_content", {"texts": ["Nice."]}, priority="high")
    task_id = done["task_id"]
    # Then there is exactly one line per transition, in order
    lines = _task_lines(caplog.records, task_id)
    messages = [r.getMessage() for r in lines]
    assert len(messages) == 3, messages
    assert messages[0] == f"task {task_id} pending type=analyze_content priority=high"
    assert re.fullmatch(
        rf"task {task_id} running type=analyze_content waited=\d+\.\d{{3}}s", messages[1]
    )
    assert re.fullmatch(
        rf"task {task_id} completed type=analyze_content duration=\d+\.\d{{3}}s", messages[2]
    )
    # And as JSON each line carries the fields on their own
    entries = []
    for record in lines:
        add_task_fields(record)
        entries.append(orjson.loads(JsonFormatter().format(record)))
    assert [(e["task_id"], e["type"], e["status"]) for e in entries] == [
        (task_id, "analyze_content", status) for status in ("pending", "running", "completed")
    ]
    assert entries[0]["priority"] == "high"
    assert isinstance(entries[1]["waited"], float) and entries[1]["waited"] >= 0
    assert isinstance(entries[2]["duration"], float) and entries[2]["duration"] >= 0
    assert all(e["level"] == "INFO" and e["logger"] == "rpcsvc.tasks" for e in entries)


async def test_cancelled_pending_task_logs_no_start(
    service: Service, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="rpcsvc.tasks")
    blockers = [await service.rpc.create("debug.sleep", {"seconds": 60}) for _ in range(2)]
    pending = await service.rpc.create("analyze_content", {"texts": ["never"]})
    await service.rpc.cancel(pending["task_id"])
    messages = [r.getMessage() for r in _task_lines(caplog.records, pending["task_id"])]
    assert messages == [
        f"task {pending['task_id']} pending type=analyze_content priority=normal",
        f"task {pending['task_id']} cancelled type=analyze_content duration=-",
    ]
    for blocker in blockers:
        await service.rpc.cancel(blocker["task_id"])


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _json_lines(stream: asyncio.StreamReader, until: str) -> list[dict[str, Any]]:
    entries = []
    while line := await stream.readline():
        entries.append(orjson.loads(line))
        if until in entries[-1]["message"]:
            break
    return entries


@pytest.mark.parametrize("access_log", [False, True])
async def test_serve_with_log_format_json_writes_one_object_a_line(access_log: bool) -> None:
    # Given `rpcsvc serve --log-format json` on a free port, with or without the access log
    port = _free_port()
    server = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "rpcsvc.cli", "serve", "--port", str(port), "--workers", "1",
        "--log-format", "json", "--log-level", "info", "--access-log", str(access_log),
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert server.stderr is not None
    try:
        startup = await asyncio.wait_for(_json_lines(server.stderr, "listening on"), 30)
        # When a task runs
        async with RpcClient(f"http://127.0.0.1:{port}") as rpc:
            task = await rpc.run("analyze_content", {"texts": ["Good news."]})
        server.send_signal(signal.SIGINT)
        rest = [orjson.loads(line) for line in (await server.stderr.read()).splitlines() if line]
    finally:
        if server.returncode is None:
            server.kill()
        await server.wait()
    # Then every line was a JSON object, and the task's three transitions are structured
    assert startup[-1]["logger"] == "rpcsvc"
    transitions = [e for e in rest if e.get("task_id") == task["task_id"]]
    assert [(e["status"], e["type"], e["logger"]) for e in transitions] == [
        ("pending", "analyze_content", "rpcsvc.tasks"),
        ("running", "analyze_content", "rpcsvc.tasks"),
        ("completed", "analyze_content", "rpcsvc.tasks"),
    ]
    assert transitions[2]["duration"] >= 0
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", e["time"]) for e in rest)
    # And HTTP requests are logged only when the access log is on
    requests = [e["message"] for e in rest if e["logger"] == "aiohttp.access"]
    if access_log:
        assert requests and all('"POST /rpc HTTP/1.1" 200' in m for m in requests)
    else:
        assert requests == []


@pytest.fixture
def batching_log() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    stream = io.StringIO()
    handler = BatchingStreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    log = logging.getLogger("tests.batching")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    yield log, stream
    log.removeHandler(handler)


async def test_lines_are_written_in_batches_and_warnings_at_once(
    batching_log: tuple[logging.Logger, io.StringIO], monkeypatch: pytest.MonkeyPatch
) -> None:
    log, stream = batching_log
    monkeypatch.setattr(BatchingStreamHandler, "FLUSH_INTERVAL", 0)
    # When two INFO lines are logged on the loop, nothing is written yet
    log.info("one")
    log.info("two")
    assert stream.getvalue() == ""
    # When a warning follows, the three are written at once, in order
    log.warning("three")
    assert stream.getvalue() == "INFO one\nINFO two\nWARNING three\n"
    # When another INFO line is logged, the loop writes it on its next turns
    log.info("four")
    assert stream.getvalue().endswith("three\n")
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert stream.getvalue() == "INFO one\nINFO two\nWARNING three\nINFO four\n"


def test_lines_logged_where_no_loop_runs_are_written_at_once(
    batching_log: tuple[logging.Logger, io.StringIO],
) -> None:
    log, stream = batching_log
    log.info("start-up")
    assert stream.getvalue() == "INFO start-up\n"


class _BrokenPipe(io.StringIO):
    def write(self, text: str) -> int:
        raise BrokenPipeError("the reader has gone")

    def flush(self) -> None:
        raise BrokenPipeError("the reader has gone")


async def test_a_broken_stream_loses_lines_but_never_raises(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given the handler on a pipe whose reader has gone, in a running loop
    monkeypatch.setattr(BatchingStreamHandler, "FLUSH_INTERVAL", 0)
    handler = BatchingStreamHandler(_BrokenPipe())
    log = logging.getLogger("tests.broken")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    try:
        # When lines are logged and written, on the loop's timer and at once
        log.info("batched")
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        log.warning("at once")
        handler.close()
    finally:
        log.removeHandler(handler)
    # Then nothing was raised to the callers (the server's transitions log from inside)
