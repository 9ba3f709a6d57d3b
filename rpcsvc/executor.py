"""The process pool behind a small interface: submit a job, stop a job, close.

The TaskManager only ever talks to this interface (``submit``/``kill``/``capacity``), so moving
CPU work onto another engine (e.g. Celery workers) is a new module with the same methods.

``ProcessPoolExecutor`` alone loses work when a worker dies (every in-flight future fails with
``BrokenProcessPool``, and the pool stays broken), cannot stop one running call, and on Python
3.11 may not notice the death of a worker it has just started. So a watchdog thread waits on
the workers' sentinels itself, the pool is rebuilt at once, and each lost job is told whether
its own process died (the culprit) or it was a bystander (to be retried without penalty).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import itertools
import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import threading
from collections.abc import Callable
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from workers import runtime

from .errors import WorkerDied
from .registry import Call

log = logging.getLogger(__name__)

WATCHDOG_INTERVAL = 0.2  # seconds; bounds how late a worker's death is noticed


class Job:
    """One pool call carrying one or more task calls."""

    __slots__ = ("calls", "future", "generation", "id", "kill_requested", "pid", "pool_future")

    def __init__(self, job_id: int, calls: list[Call], future: asyncio.Future[list[Any]]) -> None:
        self.id = job_id
        self.calls = calls
        self.future = future
        self.pid: int | None = None
        self.generation = 0
        self.kill_requested = False
        self.pool_future: concurrent.futures.Future[list[Any]] | None = None

    def __repr__(self) -> str:
        return f"<Job {self.id} calls={len(self.calls)} pid={self.pid}>"


class ProcessExecutor:
    """A self-healing ``ProcessPoolExecutor`` with per-job stop."""

    def __init__(self, *, workers: int, max_tasks_per_child: int | None = None) -> None:
        self._workers = workers
        self._max_tasks_per_child = max_tasks_per_child
        self._ctx = multiprocessing.get_context("forkserver")
        # Workers fork from a server that has imported these once: fast starts and restarts.
        self._ctx.set_forkserver_preload(["workers.runtime", "workers.sentiment"])
        self._events: Any = self._ctx.SimpleQueue()
        self._pool: concurrent.futures.ProcessPoolExecutor | None = None
        self._generation = 0
        self._jobs: dict[int, Job] = {}
        self._job_ids = itertools.count(1)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closing = False
        self._threads: list[threading.Thread] = []
        self.restarts = 0
        self.on_restart: Callable[[], None] | None = None

    def __repr__(self) -> str:
        return (
            f"<ProcessExecutor workers={self._workers} running={len(self._jobs)} "
            f"restarts={self.restarts}>"
        )

    @property
    def capacity(self) -> int:
        """Jobs that may be in flight at once: one per worker, so the pool's FIFO stays empty."""
        return self._workers

    @property
    def running(self) -> int:
        return len(self._jobs)

    @property
    def alive_workers(self) -> int:
        pool = self._pool
        procs = getattr(pool, "_processes", None) or {}
        return sum(1 for p in list(procs.values()) if p.exitcode is None)

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._pool = self._new_pool()
        for target in (self._read_events, self._watch_workers):
            thread = threading.Thread(target=target, name=f"rpcsvc-{target.__name__}", daemon=True)
            thread.start()
            self._threads.append(thread)
        await self._warm_up()

    async def _warm_up(self) -> None:
        # The pool starts processes lazily; start them all now so /healthz means "ready".
        assert self._pool is not None
        futures = [self._pool.submit(runtime.warm_up) for _ in range(self._workers)]
        await asyncio.gather(*(asyncio.wrap_future(f) for f in futures))

    def _new_pool(self) -> concurrent.futures.ProcessPoolExecutor:
        return concurrent.futures.ProcessPoolExecutor(
            max_workers=self._workers,
            mp_context=self._ctx,
            initializer=runtime.init_worker,
            initargs=(self._events,),
            max_tasks_per_child=self._max_tasks_per_child,
        )

    def submit(self, calls: list[Call]) -> Job:
        """Start a job; its ``future`` gives one outcome per call, or raises WorkerDied."""
        assert self._loop is not None and self._pool is not None, "executor not started"
        job = Job(next(self._job_ids), calls, self._loop.create_future())
        job.generation = self._generation
        self._jobs[job.id] = job
        payload = [(call.fn, call.args) for call in calls]
        try:
            job.pool_future = self._pool.submit(runtime.run_job, job.id, payload)
        except (BrokenProcessPool, RuntimeError):
            self._fail_job(job, WorkerDied("worker pool is restarting"))
            self._restart_pool(dead_pid=None)
            return job
        job.pool_future.add_done_callback(
            lambda f: self._loop.call_soon_threadsafe(self._on_pool_done, job, f)  # type: ignore[union-attr]
        )
        return job

    def kill(self, job: Job) -> None:
        """Stop a job now: SIGKILL its process (the pool is then rebuilt), or drop it unstarted."""
        if job.future.done():
            return
        job.kill_requested = True
        if job.pool_future is not None and job.pool_future.cancel():
            self._fail_job(job, WorkerDied("stopped before it started", culprit=True))
        elif job.pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(job.pid, signal.SIGKILL)
        # else: its pid arrives in a moment and _on_job_started kills it then

    def _on_job_started(self, job_id: int, pid: int) -> None:
        job = self._jobs.get(job_id)
        if job is None:
            return
        job.pid = pid
        if job.kill_requested:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def _on_pool_done(self, job: Job, pool_future: concurrent.futures.Future[list[Any]]) -> None:
        if job.future.done():
            return
        if pool_future.cancelled():
            self._fail_job(job, WorkerDied("stopped before it started", culprit=True))
            return
        exc = pool_future.exception()
        if exc is None:
            self._jobs.pop(job.id, None)
            job.future.set_result(pool_future.result())
        elif isinstance(exc, BrokenProcessPool):
            self._restart_pool(dead_pid=None, generation=job.generation)
        else:  # e.g. an unpicklable result: a bug in the task's code, not the pool's
            self._fail_job(job, exc)

    def _fail_job(self, job: Job, exc: BaseException) -> None:
        self._jobs.pop(job.id, None)
        if not job.future.done():
            job.future.set_exception(exc)

    def _restart_pool(self, *, dead_pid: int | None, generation: int | None = None) -> None:
        """Replace a broken pool; jobs in flight learn whether their own process died."""
        if self._closing or (generation is not None and generation != self._generation):
            return
        old = self._pool
        old_procs = dict(getattr(old, "_processes", None) or {})
        if dead_pid is None:
            dead = [pid for pid, p in old_procs.items() if p.exitcode not in (None, 0)]
            dead_pid = dead[0] if dead else None
        self._generation += 1
        self.restarts += 1
        log.warning("worker process %s died; restarting the pool", dead_pid)
        self._pool = self._new_pool()
        for job in list(self._jobs.values()):
            if job.generation < self._generation:
                culprit = job.pid is not None and job.pid == dead_pid
                self._fail_job(job, WorkerDied(culprit=culprit or job.kill_requested))
        if old is not None:
            old.shutdown(wait=False, cancel_futures=True)
            for proc in old_procs.values():
                with contextlib.suppress(Exception):
                    proc.kill()
        if self.on_restart is not None:
            self.on_restart()

    def _read_events(self) -> None:
        while True:
            job_id, pid = self._events.get()
            if job_id < 0 or self._loop is None or self._loop.is_closed():
                return
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._on_job_started, job_id, pid)

    def _watch_workers(self) -> None:
        while not self._closing:
            pool, generation = self._pool, self._generation
            procs = dict(getattr(pool, "_processes", None) or {})
            sentinels = {p.sentinel: (pid, p) for pid, p in procs.items()}
            if not sentinels:
                multiprocessing.connection.wait([], timeout=WATCHDOG_INTERVAL)
                continue
            ready = multiprocessing.connection.wait(list(sentinels), timeout=WATCHDOG_INTERVAL)
            for sentinel in ready:
                pid, proc = sentinels[sentinel]  # type: ignore[index]
                proc.join(0)
                if proc.exitcode not in (None, 0) and not self._closing:
                    with contextlib.suppress(RuntimeError):
                        self._loop.call_soon_threadsafe(  # type: ignore[union-attr]
                            lambda pid=pid, g=generation: self._restart_pool(
                                dead_pid=pid, generation=g
                            )
                        )
                    break

    async def close(self) -> None:
        """Stop every worker process without blocking the event loop."""
        self._closing = True
        pool, self._pool = self._pool, None
        for job in list(self._jobs.values()):
            self._fail_job(job, WorkerDied("server shutting down"))
        if pool is not None:
            procs = list((getattr(pool, "_processes", None) or {}).values())
            pool.shutdown(wait=False, cancel_futures=True)
            for proc in procs:
                with contextlib.suppress(Exception):
                    proc.kill()
            await asyncio.to_thread(_join_all, procs)
        self._events.put((-1, 0))
        await asyncio.to_thread(_join_threads, self._threads)


def _join_all(procs: list[Any]) -> None:
    for proc in procs:
        proc.join(timeout=5)


def _join_threads(threads: list[threading.Thread]) -> None:
    for thread in threads:
        thread.join(timeout=5)
