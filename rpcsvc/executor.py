"""The process pool behind a small interface: submit a job, stop a job, close.

The TaskManager only ever talks to this interface (``submit``/``kill``/``capacity``), so moving
CPU work onto another engine (e.g. Celery workers) is a new module with the same methods.

``ProcessPoolExecutor`` alone loses work when a worker dies (every in-flight future fails with
``BrokenProcessPool``, and the pool stays broken), cannot stop one running call, and may not
notice a death at all (see ``rpcsvc.watchdog``). So:

- a watchdog waits on every worker's sentinel, and on a death the pool is rebuilt at once; each
  lost job learns whether its own process died (the culprit) or it was a bystander (to be
  retried without penalty);
- workers announce the job they start on a lock-free pipe (see ``workers.runtime``), so one job
  can be stopped with SIGKILL, and what a dead process announced is always read before the
  blame is assigned; a worker retiring after ``max_tasks_per_child`` calls, or terminated by
  the pool because another one died, says so too, so neither is blamed.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import itertools
import logging
import multiprocessing
import os
import signal
from collections.abc import Callable
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from workers import runtime

from .errors import WorkerDied
from .registry import Call
from .watchdog import Watchdog, abandon, exited_sentinels, wait_exited

log = logging.getLogger(__name__)

BROKEN_POOL_FALLBACK = 1.0  # seconds the pool's own BrokenProcessPool waits for the watchdog


class Job:
    """One pool call carrying one or more task calls."""

    __slots__ = (
        "calls",
        "future",
        "generation",
        "id",
        "kill_requested",
        "pid",
        "pool_future",
        "started",
    )

    def __init__(self, job_id: int, calls: list[Call], loop: asyncio.AbstractEventLoop) -> None:
        self.id = job_id
        self.calls = calls
        self.future: asyncio.Future[list[Any]] = loop.create_future()
        self.started: asyncio.Future[int] = loop.create_future()  # the pid, once it runs
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
        self._events_in, self._events_out = self._ctx.Pipe(duplex=False)
        # Workers exit when this pipe's write end closes, i.e. when this process is gone.
        self._lifeline_in, self._lifeline_out = self._ctx.Pipe(duplex=False)
        os.set_blocking(self._events_in.fileno(), False)
        self._events_buffer = b""
        self._pool: concurrent.futures.ProcessPoolExecutor | None = None
        self._generation = 0
        self._jobs: dict[int, Job] = {}
        self._job_ids = itertools.count(1)
        self._retiring: set[int] = set()  # pids that announced a clean exit
        self._terminated: set[int] = set()  # pids stopped by SIGTERM (by the pool): not to blame
        self._killed: set[int] = set()  # pids we killed to stop a job
        self._fallback_armed = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closing = False
        self._watchdog: Watchdog | None = None
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
    def jobs(self) -> list[Job]:
        """The jobs in flight."""
        return list(self._jobs.values())

    @property
    def pids(self) -> list[int]:
        """Process ids of the current pool's workers (some may be starting or just exited)."""
        return list(self._processes())

    @property
    def alive_workers(self) -> int:
        procs = list(self._processes().values())
        return len(procs) - len(exited_sentinels([p.sentinel for p in procs]))

    def _processes(self) -> dict[int, Any]:
        return dict(getattr(self._pool, "_processes", None) or {})

    # --- lifetime ------------------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self._events_in.fileno(), self._read_events)
        self._pool = self._new_pool()
        self._watchdog = Watchdog(self._loop, self._on_workers_exited)
        self._watchdog.watched = (self._pool, self._generation)
        self._watchdog.start()
        await self._warm_up()

    async def _warm_up(self) -> None:
        # The pool starts processes lazily; start them all now so /healthz means "ready".
        assert self._pool is not None
        futures = [self._pool.submit(runtime.warm_up) for _ in range(self._workers)]
        self._wake_watchdog()
        await asyncio.gather(*(asyncio.wrap_future(f) for f in futures))

    def _new_pool(self) -> concurrent.futures.ProcessPoolExecutor:
        return concurrent.futures.ProcessPoolExecutor(
            max_workers=self._workers,
            mp_context=self._ctx,
            initializer=runtime.init_worker,
            initargs=(self._events_out, self._lifeline_in, self._max_tasks_per_child),
            max_tasks_per_child=self._max_tasks_per_child,
        )

    async def close(self) -> None:
        """Stop every worker process without blocking the event loop."""
        self._closing = True
        pool, self._pool = self._pool, None
        for job in list(self._jobs.values()):
            self._fail_job(job, WorkerDied("server shutting down"))
        if self._loop is not None:
            self._loop.remove_reader(self._events_in.fileno())
        if pool is not None:
            procs = list((getattr(pool, "_processes", None) or {}).values())
            abandon(pool, procs)
            await asyncio.to_thread(wait_exited, [p.sentinel for p in procs], 5.0)
        if self._watchdog is not None:
            await self._watchdog.stop()
        for conn in (self._events_in, self._events_out, self._lifeline_in, self._lifeline_out):
            conn.close()

    # --- jobs ----------------------------------------------------------------------------

    def submit(self, calls: list[Call]) -> Job:
        """Start a job; its ``future`` gives one outcome per call, or raises WorkerDied."""
        assert self._loop is not None, "executor not started"
        job = Job(next(self._job_ids), calls, self._loop)
        if self._pool is None:
            job.future.set_exception(WorkerDied("server shutting down"))
            return job
        payload = [(call.fn, call.args) for call in calls]
        spawned = len(self._processes())
        try:
            job.pool_future = self._pool.submit(runtime.run_job, job.id, payload)
        except BrokenProcessPool:
            # The pool saw a death the watchdog has not reported yet: rebuild, then submit.
            self._rebuild(self._exited_pids())
            job.pool_future = self._pool.submit(runtime.run_job, job.id, payload)
        if len(self._processes()) != spawned:
            self._wake_watchdog()  # watch the process this submit started, from now on
        job.generation = self._generation
        self._jobs[job.id] = job
        job.pool_future.add_done_callback(functools.partial(self._pool_done_threadsafe, job))
        return job

    def _pool_done_threadsafe(
        self, job: Job, pool_future: concurrent.futures.Future[list[Any]]
    ) -> None:
        # Called in the pool's thread, possibly after the loop has closed (at shutdown).
        if self._loop is not None and not self._loop.is_closed():
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._on_pool_done, job, pool_future)

    def kill(self, job: Job) -> None:
        """Stop a job now: SIGKILL its process (the pool is then rebuilt), or drop it unstarted."""
        if job.future.done():
            return
        job.kill_requested = True
        if job.pool_future is not None and job.pool_future.cancel():
            self._fail_job(job, WorkerDied("stopped before it started", culprit=True))
        elif job.pid is not None:
            self._kill_pid(job.pid)
        # else: its pid arrives in a moment and _on_job_started kills it then

    def _kill_pid(self, pid: int) -> None:
        self._killed.add(pid)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)

    def _on_pool_done(self, job: Job, pool_future: concurrent.futures.Future[list[Any]]) -> None:
        # The pool future's callback holds the job and the job held the pool future: a cycle
        # that kept every merged job's calls and results alive until a garbage collection.
        job.pool_future = None
        if job.future.done():
            return
        if job.pid is None:
            self._read_events()  # its start was announced before its result: take it first
        if pool_future.cancelled():
            self._fail_job(job, WorkerDied("stopped before it started", culprit=True))
            return
        exc = pool_future.exception()
        if exc is None:
            self._jobs.pop(job.id, None)
            job.future.set_result(pool_future.result())
        elif isinstance(exc, BrokenProcessPool):
            # The watchdog reports which process died, and so whom to blame. Should it not
            # have done so in a second, rebuild anyway rather than leave the job hanging.
            if job.generation == self._generation and not self._fallback_armed:
                self._fallback_armed = True
                assert self._loop is not None
                self._loop.call_later(BROKEN_POOL_FALLBACK, self._fallback, job.generation)
        else:  # e.g. an unpicklable result: a bug in the task's code, not the pool's
            self._fail_job(job, exc)

    def _fallback(self, generation: int) -> None:
        if not self._closing and generation == self._generation:
            log.warning("the pool broke and the watchdog did not say why; rebuilding")
            self._rebuild(self._exited_pids())

    def _fail_job(self, job: Job, exc: BaseException) -> None:
        self._jobs.pop(job.id, None)
        if not job.future.done():
            job.future.set_exception(exc)

    # --- worker events and deaths ----------------------------------------------------------

    def _read_events(self) -> None:
        """Read every (job id, pid) announcement the workers have written so far."""
        while True:
            try:
                data = os.read(self._events_in.fileno(), 65536)
            except BlockingIOError:
                return
            if not data:
                return
            data = self._events_buffer + data
            usable = len(data) - len(data) % runtime.EVENT.size
            self._events_buffer = data[usable:]
            for job_id, pid in runtime.EVENT.iter_unpack(data[:usable]):
                self._on_event(job_id, pid)

    def _on_event(self, job_id: int, pid: int) -> None:
        if job_id == runtime.RETIRING:
            self._retiring.add(pid)
            return
        if job_id == runtime.TERMINATED:
            self._terminated.add(pid)
            return
        job = self._jobs.get(job_id)
        if job is None:
            return
        job.pid = pid
        if not job.started.done():
            job.started.set_result(pid)
        if job.kill_requested:
            self._kill_pid(pid)

    def _on_workers_exited(self, generation: int, pids: list[int]) -> None:
        if self._closing or generation != self._generation:
            return
        self._read_events()  # what the processes said before they exited comes first
        current = self._processes()
        died = [pid for pid in pids if pid in current and pid not in self._retiring]
        self._retiring.difference_update(pids)
        if died:
            self._rebuild(died)

    def _exited_pids(self) -> list[int]:
        by_sentinel = {p.sentinel: pid for pid, p in self._processes().items()}
        exited = [by_sentinel[s] for s in exited_sentinels(list(by_sentinel))]
        return [pid for pid in exited if pid not in self._retiring]

    def _rebuild(self, died: list[int]) -> None:
        """Replace the pool; jobs in flight learn whether their own process died."""
        if self._closing:
            return
        self._read_events()
        # Processes the pool terminated because another one died are not to blame.
        dead_pids = [pid for pid in died if pid not in self._terminated]
        old = self._pool
        old_procs = dict(getattr(old, "_processes", None) or {})
        self._pool = self._new_pool()
        self._generation += 1
        if self._watchdog is not None:
            self._watchdog.watched = (self._pool, self._generation)
        self.restarts += 1
        self._fallback_armed = False
        log.warning(
            "worker process %s died; rebuilding the pool (restart %d)",
            ", ".join(map(str, dead_pids or died)) or "(unknown)",
            self.restarts,
        )
        for job in list(self._jobs.values()):
            if job.generation < self._generation:
                # Blame a job whose own process died, unless we killed that process for
                # another job (which finished just before the kill landed).
                own_death = job.pid in dead_pids and job.pid not in self._killed
                self._fail_job(job, WorkerDied(culprit=job.kill_requested or own_death))
        self._retiring.clear()
        self._terminated.clear()
        self._killed.clear()
        if old is not None:
            abandon(old, [proc for pid, proc in old_procs.items() if pid not in died])
        if self.on_restart is not None:
            self.on_restart()

    def _wake_watchdog(self) -> None:
        if self._watchdog is not None:
            self._watchdog.wake()
