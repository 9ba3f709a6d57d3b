"""Reliability through the real server with real worker processes (issue 5): worker deaths,
hard time limits, recycling, bounded memory and back-pressure."""

from __future__ import annotations

import asyncio
import os
import signal
import struct
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from rpcsvc import errors
from rpcsvc.executor import Job
from rpcsvc.registry import Call
from rpcsvc.task import Task
from tests.conftest import Service, StartService
from tests.processes import process_exit
from workers import sentiment

TWEETS = Path(__file__).resolve().parents[2] / "shared" / "data" / "vader_tweets_groundtruth.tsv"
MISSING = "00000000-0000-4000-8000-000000000000"
SENTIMENT = {"analysis_types": ["sentiment"]}


def _texts(count: int) -> list[str]:
    """Real tweets (the VADER paper's rated set) when present, else varied sentences."""
    if TWEETS.exists():
        tweets = [line.split("\t", 2)[2] for line in TWEETS.read_text("utf-8").splitlines()]
    else:
        words = ["great", "awful", "vote", "policy", "love", "hate", "maybe", "debate"]
        tweets = [
            f"The {words[i % 8]} {words[i * 7 % 8]} is {words[i * 3 % 8]}" for i in range(997)
        ]
    return [tweets[i % len(tweets)] for i in range(count)]


def _row(post_id: Any, text: str) -> dict[str, Any]:
    return {"id": post_id, **sentiment.score(text)}


def _seconds(start: str, end: str) -> float:
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


def _spy_on_submits(
    service: Service, on_submit: Callable[[int, Job], None] | None = None
) -> list[tuple[Job, list[Call]]]:
    """Record every job the executor is given (wrapping the bound method of this instance)."""
    executor = service.manager.executor
    submitted: list[tuple[Job, list[Call]]] = []
    submit = executor.submit

    def spy(calls: list[Call]) -> Job:
        job = submit(calls)
        submitted.append((job, calls))
        if on_submit is not None:
            on_submit(len(submitted) - 1, job)
        return job

    executor.submit = spy  # type: ignore[method-assign]
    return submitted


async def _pid_of(service: Service, task_id: str) -> int:
    """The pid of the worker process running ``task_id`` alone."""
    (job,) = service.manager.jobs_of(task_id)
    return await asyncio.wait_for(job.started, 10)


# --- worker deaths ---------------------------------------------------------------------------


async def test_worker_killed_mid_bulk_task_redoes_only_the_lost_chunk(
    start_service: StartService,
) -> None:
    # Given a bulk task of 4,000 texts (three real tweets each) in chunks of 500: 8 chunks
    service = await start_service(chunk_size=500)
    tweets = _texts(12_000)
    texts = [" ".join(tweets[i : i + 3]) for i in range(0, 12_000, 3)]
    killed: dict[str, Any] = {}

    def first_id(calls: list[Call]) -> int:
        return int(calls[0].args[0][0][0])  # the id of the chunk's first (id, text) pair

    def kill_the_third_chunk_as_it_starts(index: int, job: Job) -> None:
        # When the third chunk's job (sent once the first chunk is done) starts, its worker is
        # SIGKILLed: the chunk is surely unfinished, others are done or running
        def kill(started: asyncio.Future[int]) -> None:
            done = [calls for job, calls in submitted if job.future.done()]
            killed.update(chunk=first_id(job.calls), done_before={first_id(c) for c in done})
            os.kill(started.result(), signal.SIGKILL)

        if index == 2:
            job.started.add_done_callback(kill)

    submitted = _spy_on_submits(service, kill_the_third_chunk_as_it_starts)
    task = await service.rpc.run("analyze_content", {"texts": texts, **SENTIMENT})

    # Then the task completed with every row correct, as if nothing had happened
    assert killed, "the third chunk never started"
    assert task["status"] == "completed"
    assert task["progress"] == {"done": 4000, "total": 4000}
    rows = task["result"]["posts"]
    assert rows == [_row(i, text) for i, text in enumerate(texts)]
    summary = task["result"]["summary"]
    assert summary["count"] == 4000
    assert summary["labels"] == {
        label: sum(1 for r in rows if r["label"] == label)
        for label in ("positive", "neutral", "negative")
    }
    mean = sum(r["compound"] for r in rows) / 4000
    assert summary["mean_compound"] == pytest.approx(mean, abs=1e-4)
    # And the pool was rebuilt once: the killed chunk ran twice, chunks finished before the
    # kill ran once, and only chunks in flight at the kill (one per worker) could run twice
    assert service.manager.executor.restarts == 1
    firsts = [first_id(calls) for _, calls in submitted]
    assert sorted(set(firsts)) == list(range(0, 4000, 500))
    assert firsts.count(killed["chunk"]) == 2
    assert killed["done_before"] and all(firsts.count(f) == 1 for f in killed["done_before"])
    assert len(firsts) <= 8 + 2


async def test_worker_killed_during_a_batch_of_small_tasks_loses_none(service: Service) -> None:
    # Given 2,000 one-text tasks created in one JSON-RPC batch (merged into few pool jobs)
    texts = _texts(2000)
    killed: list[int] = []

    def kill_when_the_first_finishes(task: Task, previous: object) -> None:
        if killed or not task.finished:
            return
        running = [job for job in service.manager.executor.jobs if job.pid is not None]
        if running:
            killed.append(running[0].pid)  # type: ignore[arg-type]
            os.kill(running[0].pid, signal.SIGKILL)  # type: ignore[arg-type]

    service.manager.listeners.append(kill_when_the_first_finishes)
    created = await service.rpc.batch(
        [
            ("task.create", {"type": "analyze_content", "params": {"texts": [t], **SENTIMENT}})
            for t in texts
        ]
    )
    # When a worker is SIGKILLed as soon as the first task has finished
    ids = [task["task_id"] for task in created]
    done: list[dict[str, Any]] = []
    for start in range(0, len(ids), 500):
        done += await service.rpc.batch(
            [
                ("task.wait", {"task_id": task_id, "timeout": 60})
                for task_id in ids[start : start + 500]
            ]
        )
    # Then every task completed with its own correct result: none lost, none left running
    assert killed and service.manager.executor.restarts >= 1
    assert [task["status"] for task in done] == ["completed"] * 2000
    assert [task["result"]["posts"] for task in done] == [[_row(0, text)] for text in texts]
    assert service.manager.counts()["running"] == service.manager.counts()["pending"] == 0


@pytest.mark.parametrize("exit_code", [3, -signal.SIGKILL, -signal.SIGSEGV])
async def test_task_that_kills_its_worker_every_time_fails_after_max_attempts(
    start_service: StartService, exit_code: int
) -> None:
    # Given three attempts allowed, a task that kills its worker process every time, and a
    # long task on the other worker that loses its pool each time
    service = await start_service(max_attempts=3)
    bystander = await service.rpc.create("debug.sleep", {"seconds": 0.5})
    crash = await service.rpc.create("debug.crash", {"exit_code": exit_code})
    # Then the crashing task fails after three attempts, saying why
    crashed = await service.rpc.wait(crash["task_id"], 30)
    assert crashed["status"] == "failed"
    assert crashed["error"] == {
        "type": "WorkerDied",
        "message": "the worker process died while running this task (3 attempts)",
    }
    # And the bystander completed, retried without an attempt counted against it
    assert (await service.rpc.wait(bystander["task_id"], 30))["status"] == "completed"
    assert service.manager.get(bystander["task_id"]).attempts == 0
    assert service.manager.executor.restarts == 3
    # And the server kept answering and still runs new work
    health = await service.http.get("/healthz")
    assert health.status == 200
    assert (await service.rpc.run("analyze_content", {"texts": ["still fine"]}))["status"] == (
        "completed"
    )


async def test_worker_death_is_noticed_within_a_second(start_service: StartService) -> None:
    # Given a worker process running a long job, then one the rebuilt pool has just started
    # (Python 3.11's own pool can miss the death of a process it has just started)
    service = await start_service(max_attempts=1)
    delays = []
    for _ in range(2):
        task = await service.rpc.create("debug.sleep", {"seconds": 30})
        pid = await _pid_of(service, task["task_id"])
        (job,) = service.manager.jobs_of(task["task_id"])
        # When it is SIGKILLed
        killed_at = time.perf_counter()
        os.kill(pid, signal.SIGKILL)
        with pytest.raises(errors.WorkerDied):
            await asyncio.wait_for(job.future, 10)
        delays.append(time.perf_counter() - killed_at)
        assert (await service.rpc.wait(task["task_id"], 10))["status"] == "failed"
    # Then each death was noticed (and the job given back) well within a second
    assert max(delays) < 1.0, delays
    assert service.manager.executor.restarts == 2


async def test_recycled_workers_are_not_taken_for_dead_ones(start_service: StartService) -> None:
    # Given workers replaced after every 2 pool calls
    service = await start_service(max_tasks_per_child=2)
    # When 12 tasks run one after another, and then 12 at once (each alone in its pool call)
    one_by_one = [await service.rpc.run("debug.sleep", {"seconds": 0}) for _ in range(12)]
    created = await service.rpc.batch(
        [("task.create", {"type": "debug.sleep", "params": {"seconds": 0.01}, "timeout": 30})] * 12
    )
    at_once = [await service.rpc.wait(task["task_id"], 30) for task in created]
    # Then all completed on a succession of fresh processes, without any pool rebuild
    tasks = one_by_one + at_once
    assert [t["status"] for t in tasks] == ["completed"] * 24
    pids = {t["result"]["pid"] for t in tasks}
    assert len(pids) >= 24 // 2
    assert service.manager.executor.restarts == 0
    # And the pool still serves work
    assert (await service.rpc.run("analyze_content", {"texts": ["ok"]}))["status"] == "completed"


# --- hard time limits and cancel -----------------------------------------------------------


async def test_hung_task_is_killed_at_its_timeout_and_its_bystander_retried_free(
    start_service: StartService,
) -> None:
    # Given one attempt only (any penalty would fail a task), a task on one worker, and a
    # hung task with a 0.3 s timeout on the other
    service = await start_service(max_attempts=1)
    bystander = await service.rpc.create("debug.sleep", {"seconds": 0.6})
    hung = await service.rpc.create("debug.sleep", {"seconds": 60}, timeout=0.3)
    pid = await _pid_of(service, hung["task_id"])
    # When the timeout passes
    failed = await service.rpc.wait(hung["task_id"], 10)
    # Then the hung task failed within about a second of its limit, and its process is gone
    assert failed["status"] == "failed"
    assert failed["error"] == {
        "type": "TaskTimeout",
        "message": "Task ran past its timeout of 0.3 s",
    }
    assert 0.3 <= _seconds(failed["started_at"], failed["finished_at"]) < 1.3
    assert await process_exit(pid, 2)
    # And the other task, whose pool was rebuilt under it, was retried and completed
    done = await service.rpc.wait(bystander["task_id"], 10)
    assert done["status"] == "completed"
    assert service.manager.get(bystander["task_id"]).attempts == 0
    assert done["result"]["pid"] != pid
    assert service.manager.executor.restarts == 1


async def test_cancel_of_a_running_cpu_task_stops_its_process(service: Service) -> None:
    # Given a CPU task running (alone) in a worker process
    task = await service.rpc.create("debug.sleep", {"seconds": 60})
    pid = await _pid_of(service, task["task_id"])
    # When it is cancelled
    cancelled = await service.rpc.cancel(task["task_id"])
    # Then it is cancelled at once and its process stops within a second
    assert cancelled["status"] == "cancelled"
    assert await process_exit(pid, 1)
    # And both workers run new work (on new processes)
    again = [await service.rpc.create("debug.sleep", {"seconds": 0.2}) for _ in range(2)]
    results = [await service.rpc.wait(t["task_id"], 10) for t in again]
    assert [r["status"] for r in results] == ["completed"] * 2
    assert pid not in {r["result"]["pid"] for r in results}


# --- bounded memory and back-pressure ------------------------------------------------------


async def test_finished_tasks_are_evicted_after_result_ttl(start_service: StartService) -> None:
    # Given results kept for 0.2 s
    service = await start_service(result_ttl=0.2)
    done = await service.rpc.run("debug.echo", {"value": 1})
    running = await service.rpc.create("debug.echo", {"value": 2, "seconds": 30})
    # When the TTL has passed (a lookup checks the clock itself)
    finished_at = datetime.fromisoformat(done["finished_at"]).timestamp()
    await asyncio.sleep(max(0.0, finished_at + 0.25 - time.time()))
    # Then the finished task is evicted, and says so (not "not found")
    with pytest.raises(errors.TaskEvicted) as info:
        await service.rpc.status(done["task_id"])
    assert info.value.code == -32004
    assert info.value.data == {"task_id": done["task_id"]}
    with pytest.raises(errors.TaskNotFound) as missing:
        await service.rpc.status(MISSING)
    assert missing.value.code == -32001
    # And a running task is never evicted, however old
    assert (await service.rpc.status(running["task_id"]))["status"] == "running"
    await service.rpc.cancel(running["task_id"])


async def test_background_sweep_evicts_without_lookups(start_service: StartService) -> None:
    service = await start_service(result_ttl=0.1)
    tasks = [await service.rpc.run("debug.echo", {"value": i}) for i in range(5)]
    # the sweeper runs every result_ttl / 4: wait for a few rounds, and no lookup in between
    await asyncio.sleep(0.1 + 0.1)
    assert len(service.manager.store) == 0
    assert (await service.rpc.list())["tasks"] == []
    with pytest.raises(errors.TaskEvicted):
        await service.rpc.status(tasks[0]["task_id"])


async def test_oldest_finished_tasks_are_evicted_over_max_finished(
    start_service: StartService,
) -> None:
    # Given at most 3 finished tasks kept, and one task running throughout
    service = await start_service(max_finished=3)
    running = await service.rpc.create("debug.echo", {"value": "long", "seconds": 30})
    # When 5 tasks finish one after another
    done = [await service.rpc.run("debug.echo", {"value": i}) for i in range(5)]
    # Then the two oldest are evicted, the three newest and the running one are kept
    for task in done[:2]:
        with pytest.raises(errors.TaskEvicted):
            await service.rpc.status(task["task_id"])
    for task in done[2:]:
        assert await service.rpc.status(task["task_id"]) == task
    listed = await service.rpc.list()
    assert [t["task_id"] for t in listed["tasks"]] == [
        *(t["task_id"] for t in reversed(done[2:])),
        running["task_id"],
    ]
    await service.rpc.cancel(running["task_id"])


async def test_queue_full_answers_at_once(start_service: StartService) -> None:
    # Given at most 3 pending tasks, and both workers busy
    service = await start_service(max_pending=3)
    blockers = [await service.rpc.create("debug.sleep", {"seconds": 30}) for _ in range(2)]
    assert [(await service.rpc.status(b["task_id"]))["status"] for b in blockers] == ["running"] * 2
    pending = [await service.rpc.create("debug.sleep", {"seconds": 0}) for _ in range(3)]
    # When a fourth task is created
    started = time.perf_counter()
    with pytest.raises(errors.QueueFull) as info:
        await service.rpc.create("debug.sleep", {"seconds": 0})
    # Then it is refused at once with the documented error
    assert time.perf_counter() - started < 0.5
    assert info.value.code == -32003
    assert info.value.message == "Queue full: 3 tasks pending (max_pending)"
    assert info.value.data == {"pending": 3, "max_pending": 3}
    # And room frees as soon as a pending task leaves the queue
    await service.rpc.cancel(pending[0]["task_id"])
    again = await service.rpc.create("debug.sleep", {"seconds": 0})
    assert again["status"] == "pending"
    for task in blockers:
        await service.rpc.cancel(task["task_id"])
    for task in [*pending[1:], again]:
        assert (await service.rpc.wait(task["task_id"], 10))["status"] == "completed"


async def test_cancelled_pending_task_between_others_loses_none(service: Service) -> None:
    # Given both workers busy and three small tasks queued behind them
    blockers = [await service.rpc.create("debug.sleep", {"seconds": 0.3}) for _ in range(2)]
    queued = [await service.rpc.create("analyze_content", {"texts": [t]}) for t in "abc"]
    # When the middle one is cancelled
    await service.rpc.cancel(queued[1]["task_id"])
    # Then the other two still run (merging skips the cancelled one, not its neighbour)
    statuses = [(await service.rpc.wait(t["task_id"], 10))["status"] for t in blockers + queued]
    assert statuses == ["completed", "completed", "completed", "cancelled", "completed"]


async def test_pool_thread_left_reading_a_cut_result_ends_with_the_pool(service: Service) -> None:
    # Given the pool's thread in the middle of reading a result whose writer died (forged here:
    # a header announcing 1 MB, then one byte, and the SIGKILL of a worker). Left alone it
    # would wait forever, and the interpreter would hang at exit joining it.
    executor = service.manager.executor
    pool = executor._pool
    assert pool is not None
    thread = pool._executor_manager_thread  # type: ignore[attr-defined]
    writer = pool._result_queue._writer  # type: ignore[attr-defined]
    rebuilt = asyncio.Event()
    executor.on_restart = rebuilt.set
    os.write(writer.fileno(), struct.pack("!i", 1_000_000) + b"x")
    os.kill(executor.pids[0], signal.SIGKILL)
    # When the pool is replaced
    await asyncio.wait_for(rebuilt.wait(), 10)
    # Then the old pool's thread has ended, and the new pool works
    await asyncio.to_thread(thread.join, 10)
    assert not thread.is_alive()
    assert (await service.rpc.run("debug.sleep", {"seconds": 0}))["status"] == "completed"
