"""Shutdown of a real ``rpcsvc serve`` process with work in flight (issue 5).

SIGTERM/SIGINT: no new tasks (ShuttingDown), pending tasks cancelled, running ones given
``--shutdown-grace`` to finish while the server still answers, the rest cancelled, and no
worker process outlives the server (not even when it is killed with SIGKILL).
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime

import aiohttp
import pytest

from rpcsvc import errors
from rpcsvc.client import RpcClient
from tests.processes import ServerProcess, descendants, process_exit, start_server

StartServer = Callable[..., Awaitable[ServerProcess]]


@pytest.fixture
async def server_process() -> AsyncIterator[StartServer]:
    """Start ``rpcsvc serve`` subprocesses; any still running at the end is killed."""
    started: list[ServerProcess] = []

    async def start(*args: str) -> ServerProcess:
        server = await start_server("--debug-tasks", "true", *args)
        started.append(server)
        return server

    yield start
    for server in started:
        await server.stop()


async def _workers_of(server: ServerProcess, count: int) -> set[int]:
    """The server's process tree once ``count`` tasks are running (forkserver, workers, ...)."""
    async with aiohttp.ClientSession() as http:
        health = await (await http.get(server.url + "/healthz")).json()
    assert health["running"] == count, health
    return descendants(server.pid)


async def test_sigterm_drains_running_work_then_stops(server_process: StartServer) -> None:
    # Given a server with a 1.5 s grace, a task that finishes within it, one that would not,
    # and one pending behind them
    server = await server_process("--shutdown-grace", "1.5")
    async with RpcClient(server.url + "/rpc") as rpc, aiohttp.ClientSession() as http:
        quick = await rpc.create("debug.sleep", {"seconds": 0.7})
        slow = await rpc.create("debug.sleep", {"seconds": 60})
        pending = await rpc.create("debug.sleep", {"seconds": 0})
        tree = await _workers_of(server, 2)
        waits = [asyncio.ensure_future(rpc.wait(t["task_id"], 60)) for t in (quick, slow)]
        # When it gets SIGTERM
        signalled = time.time()
        server.proc.send_signal(signal.SIGTERM)
        await server.wait_for_line("SIGTERM received: draining")
        # Then it still answers, but takes no new task and says it is draining
        with pytest.raises(errors.ShuttingDown) as refused:
            await rpc.create("debug.sleep", {"seconds": 0})
        assert (refused.value.code, refused.value.message) == (-32005, "Server is shutting down")
        health = await http.get(server.url + "/healthz")
        assert (health.status, (await health.json())["status"]) == (503, "draining")
        # And the pending task was cancelled before it started
        cancelled = await rpc.status(pending["task_id"])
        assert cancelled["status"] == "cancelled"
        assert cancelled["started_at"] is None
        assert cancelled["error"] == {
            "type": "ShuttingDown",
            "message": "cancelled: the server shut down before it started",
        }
        # And the quick task finished, while the slow one was cancelled at the end of the grace
        finished_quick, finished_slow = await asyncio.gather(*waits)
    assert finished_quick["status"] == "completed"
    assert finished_slow["status"] == "cancelled"
    assert finished_slow["error"] == {
        "type": "ShuttingDown",
        "message": "cancelled: the server shut down after the 1.5 s shutdown grace",
    }
    cut_at = datetime.fromisoformat(finished_slow["finished_at"]).timestamp()
    assert 1.4 <= cut_at - signalled < 3.5
    # And the server exits cleanly, its whole process tree with it
    assert await server.wait(15) == 0
    for pid in tree:
        assert await process_exit(pid, 5), f"process {pid} outlived the server"
    assert "Traceback" not in server.log


async def test_second_sigint_cuts_the_grace_short(server_process: StartServer) -> None:
    # Given a server with a long grace and a task that would outlast it
    server = await server_process("--shutdown-grace", "60")
    async with RpcClient(server.url + "/rpc") as rpc:
        task = await rpc.create("debug.sleep", {"seconds": 60})
        tree = await _workers_of(server, 1)
        waited = asyncio.ensure_future(rpc.wait(task["task_id"], 60))
        # When Ctrl-C is pressed twice
        server.proc.send_signal(signal.SIGINT)
        await server.wait_for_line("SIGINT received: draining")
        server.proc.send_signal(signal.SIGINT)
        # Then the task is cancelled at once and the server stops well before the grace ends
        finished = await waited
    assert finished["status"] == "cancelled"
    assert await server.wait(15) == 0
    await server.wait_for_line("SIGINT received again: cutting the grace period short")
    for pid in tree:
        assert await process_exit(pid, 5), f"process {pid} outlived the server"


async def test_no_worker_outlives_a_server_killed_with_sigkill(
    server_process: StartServer,
) -> None:
    # Given a server (bound to loopback unless told otherwise) whose workers are busy
    server = await server_process()
    assert server.url.startswith("http://127.0.0.1:")
    async with RpcClient(server.url + "/rpc") as rpc:
        for _ in range(2):
            await rpc.create("debug.sleep", {"seconds": 60})
        tree = await _workers_of(server, 2)
    assert len(tree) >= 3  # forkserver, two workers (and the resource tracker)
    # When the server is killed without a chance to clean up
    server.proc.kill()
    assert await server.wait(5) == -signal.SIGKILL
    # Then its worker processes (and the forkserver) exit on their own
    for pid in tree:
        assert await process_exit(pid, 5), f"process {pid} outlived the server"
