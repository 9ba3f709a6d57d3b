"""``--state-file``: task records survive a restart (issue 5).

Finished tasks answer ``task.status`` again after a restart; tasks that were pending or running
when the server stopped end ``failed`` with an ``Interrupted`` error; evicted ones still say so.
"""

from __future__ import annotations

import asyncio
import signal
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from rpcsvc import errors
from rpcsvc.app import create_app
from rpcsvc.client import RpcClient
from rpcsvc.config import Settings
from tests.conftest import StartService
from tests.processes import descendants, process_exit, start_server

MISSING = "00000000-0000-4000-8000-000000000000"
SENTIMENT = {"texts": ["What a great debate!", "Terrible policy."], "analysis_types": ["sentiment"]}

Instance = tuple[TestClient[Any, Any], RpcClient]
StartInstance = Callable[..., Awaitable[Instance]]


@pytest.fixture
async def instance() -> AsyncIterator[StartInstance]:
    """Start app instances that a test stops itself (a restart); the rest stop at the end."""
    clients: list[TestClient[Any, Any]] = []

    async def start(**overrides: Any) -> Instance:
        settings = Settings(**{"workers": 2, "debug_tasks": True, **overrides})
        client: TestClient[Any, Any] = TestClient(TestServer(create_app(settings)))
        await client.start_server()
        clients.append(client)
        return client, RpcClient("/rpc", session=client)

    yield start
    for client in clients:
        await client.close()


async def _rows_reach(path: Path, expected: dict[str, str], timeout: float = 10) -> None:
    """Wait until the state file holds ``expected`` (task id -> status): writes are batched."""

    def read() -> dict[str, str]:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
            return dict(conn.execute("SELECT task_id, status FROM tasks").fetchall())

    async def poll() -> None:
        while {k: v for k, v in (await asyncio.to_thread(read)).items() if k in expected} != (
            expected
        ):
            await asyncio.sleep(0.02)

    await asyncio.wait_for(poll(), timeout)


async def test_restart_after_a_crash(tmp_path: Path, start_service: StartService) -> None:
    # Given a server with a state file: tasks completed, failed and cancelled, two running and
    # one pending behind them
    path = tmp_path / "state.sqlite"
    server = await start_server("--debug-tasks", "true", "--state-file", str(path))
    try:
        async with RpcClient(server.url + "/rpc") as rpc:
            completed = await rpc.run("analyze_content", SENTIMENT)
            failed = await rpc.run("debug.fail", {"message": "bad post"})
            cancelled = await rpc.cancel(
                (await rpc.create("debug.echo", {"seconds": 30}))["task_id"]
            )
            running = [await rpc.create("debug.sleep", {"seconds": 60}) for _ in range(2)]
            running = [await rpc.status(t["task_id"]) for t in running]
            pending = await rpc.create("debug.sleep", {"seconds": 0})
        assert [t["status"] for t in running] == ["running", "running"]
        await _rows_reach(
            path,
            {
                completed["task_id"]: "completed",
                failed["task_id"]: "failed",
                cancelled["task_id"]: "cancelled",
                running[0]["task_id"]: "running",
                running[1]["task_id"]: "running",
                pending["task_id"]: "pending",
            },
        )
        tree = descendants(server.pid)
        # When the server is killed (no chance to clean up) and started again on the same file
        server.proc.send_signal(signal.SIGKILL)
        await server.wait(10)
    finally:
        await server.stop()
    for pid in tree:
        assert await process_exit(pid, 5)
    service = await start_service(state_file=path)
    rpc = service.rpc

    # Then finished tasks answer exactly as before
    for task in (completed, failed, cancelled):
        assert await rpc.status(task["task_id"]) == task
    # And the interrupted ones are failed, saying so, with what was known kept
    for task, was in [(running[0], "running"), (running[1], "running"), (pending, "pending")]:
        after = await rpc.status(task["task_id"])
        assert after == {
            **task,
            "status": "failed",
            "finished_at": after["finished_at"],
            "error": {
                "type": "Interrupted",
                "message": f"interrupted by restart: the task was {was} when the server stopped",
            },
            "result": None,
        }
        assert after["finished_at"] is not None
    # And the list holds them all, a new task on top; an unknown id is still not found
    new = await rpc.run("debug.echo", {"value": 1})
    listed = [t["task_id"] for t in (await rpc.list())["tasks"]]
    assert listed == [
        new["task_id"],
        pending["task_id"],
        running[1]["task_id"],
        running[0]["task_id"],
        cancelled["task_id"],
        failed["task_id"],
        completed["task_id"],
    ]
    with pytest.raises(errors.TaskNotFound):
        await rpc.status(MISSING)


async def test_graceful_restart_keeps_records_and_evictions(
    tmp_path: Path, instance: StartInstance
) -> None:
    # Given an instance keeping at most 3 finished tasks, 5 finished and one still running
    path = tmp_path / "state.sqlite"
    first, rpc = await instance(state_file=path, max_finished=3, shutdown_grace=0)
    done = [await rpc.run("debug.echo", {"value": i}) for i in range(5)]
    running = await rpc.create("debug.echo", {"value": "x", "seconds": 30})
    # When it shuts down (no grace: the running task is cancelled, a 6th finished one) and a
    # new instance opens the same file
    await first.close()
    _, rpc = await instance(state_file=path, max_finished=3)
    # Then the running task was cancelled by the shutdown, and with it the three newest
    # finished ones answer as before; the older ones still say "evicted"
    stopped = await rpc.status(running["task_id"])
    assert stopped["status"] == "cancelled"
    assert stopped["error"] == {
        "type": "ShuttingDown",
        "message": "cancelled: the server shut down after the 0 s shutdown grace",
    }
    for task in done[3:]:
        assert await rpc.status(task["task_id"]) == task
    for task in done[:3]:
        with pytest.raises(errors.TaskEvicted):
            await rpc.status(task["task_id"])


async def test_results_past_their_ttl_are_not_brought_back(
    tmp_path: Path, instance: StartInstance
) -> None:
    path = tmp_path / "state.sqlite"
    first, rpc = await instance(state_file=path)
    done = await rpc.run("debug.echo", {"value": 1})
    await first.close()
    # a new instance that keeps results for no time at all: the old result is evicted
    _, rpc = await instance(state_file=path, result_ttl=0)
    with pytest.raises(errors.TaskEvicted):
        await rpc.status(done["task_id"])
    assert (await rpc.list())["tasks"] == []
