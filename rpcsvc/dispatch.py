"""Running ``cpu`` tasks on the process pool: priorities, merging, retries, chunk results.

The TaskManager hands over a task and its :class:`Plan`; the dispatcher queues the plan's calls
by priority, gives the pool only as much as it can start (so the pool's own first-in first-out
queue stays empty and priorities hold), merges small calls into one pool job, retries calls
lost to a worker's death, and assembles the chunks' results. It reports back through three
callbacks, so the manager stays the only writer of task records.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from workers import runtime

from . import errors
from .executor import Job, ProcessExecutor
from .queue import WorkItem, WorkQueue
from .registry import Call, Plan
from .task import Task, TaskStatus

log = logging.getLogger("rpcsvc.tasks")

Started = Callable[[Task], None]
Progressed = Callable[[Task, int], None]  # (task, posts just done)
Finished = Callable[[Task, TaskStatus, Any, "dict[str, str] | None"], None]


@dataclass(eq=False)
class _CpuRun:
    """Where one cpu task stands in the pool."""

    task: Task
    plan: Plan
    partials: list[Any]
    remaining: int
    # job -> whether it carries this task's calls alone (only then may it be stopped)
    jobs: dict[Job, bool] = field(default_factory=dict)
    chunk_attempts: dict[int, int] = field(default_factory=dict)


class PoolDispatcher:
    """Feeds the executor from a priority queue and turns job outcomes into task outcomes."""

    def __init__(
        self,
        executor: ProcessExecutor,
        *,
        max_cost_per_job: int,
        max_attempts: int,
        started: Started,
        progressed: Progressed,
        finished: Finished,
    ) -> None:
        self.executor = executor
        self.max_attempts = max_attempts
        self._queue = WorkQueue(max_cost_per_job=max_cost_per_job)
        self._runs: dict[str, _CpuRun] = {}
        self._started = started
        self._progressed = progressed
        self._finished = finished
        self._pump_scheduled = False
        self._closed = False

    def __repr__(self) -> str:
        return f"<PoolDispatcher runs={len(self._runs)} queue={self._queue!r}>"

    def __len__(self) -> int:
        return len(self._queue)

    def run(self, task: Task, plan: Plan) -> None:
        """Queue the task's calls; it starts when its priority and the pool allow."""
        if len(plan.chunks) == 1 and plan.finish is not None and plan.finish_in_pool:
            chunk, finish = plan.chunks[0], plan.finish
            call = Call(
                runtime.chunk_then_finish,
                (chunk.fn, chunk.args, finish.fn, finish.args),
                chunk.cost,
            )
            plan = Plan(chunks=[call], finish=None)
        self._runs[task.task_id] = _CpuRun(task, plan, [None] * len(plan.chunks), len(plan.chunks))
        # A task that may have to be stopped alone (timeout, or many chunks) never shares a job.
        solo = task.timeout is not None or len(plan.chunks) > 1
        for index, call in enumerate(plan.chunks):
            self._queue.push(WorkItem(task, call, index, solo=solo, order=task.seq))
        self._schedule_pump()

    def stop(self, task: Task) -> None:
        """Forget a finished task; a job carrying its calls alone is stopped, freeing a worker.

        In a merged job the others' calls finish and this task's outcome is simply discarded.
        """
        run = self._runs.pop(task.task_id, None)
        if run is not None:
            for job, alone in run.jobs.items():
                if alone:
                    self.executor.kill(job)
        self._schedule_pump()

    def jobs_of(self, task_id: str) -> list[Job]:
        """The pool jobs now carrying calls of this task."""
        run = self._runs.get(task_id)
        return list(run.jobs) if run is not None else []

    def close(self) -> None:
        self._closed = True

    # --- feeding the pool --------------------------------------------------------------

    def _schedule_pump(self) -> None:
        # Deferred to the next loop turn so that a JSON-RPC batch of creates is queued whole
        # before dispatch, and can be merged into few pool calls.
        if not self._pump_scheduled and not self._closed:
            self._pump_scheduled = True
            asyncio.get_running_loop().call_soon(self._pump)

    def _pump(self) -> None:
        self._pump_scheduled = False
        capacity = self.executor.capacity
        while not self._closed and self.executor.running < capacity and self._queue:
            items = self._queue.pop_job(capacity)
            if not items:
                break
            for item in items:
                self._started(item.task)
            job = self.executor.submit([item.call for item in items])
            alone = all(item.task is items[0].task for item in items)
            for item in items:
                self._runs[item.task.task_id].jobs[job] = alone
            job.future.add_done_callback(functools.partial(self._on_job_done, items, job))

    def _on_job_done(self, items: list[WorkItem], job: Job, future: asyncio.Future[Any]) -> None:
        for item in items:
            run = self._runs.get(item.task.task_id)
            if run is not None:
                run.jobs.pop(job, None)
        exc = future.exception()
        if isinstance(exc, errors.WorkerDied):
            self._retry_after_death(items, exc, merged=len(items) > 1)
        elif exc is not None:
            for item in items:
                self._fail(item.task, exc)
        else:
            for item, outcome in zip(items, future.result(), strict=True):
                self._on_outcome(item, outcome)
        self._schedule_pump()

    def _retry_after_death(
        self, items: list[WorkItem], exc: errors.WorkerDied, merged: bool
    ) -> None:
        for item in items:
            task = item.task
            run = self._runs.get(task.task_id)
            if task.finished or run is None:
                continue
            if exc.culprit:
                attempts = run.chunk_attempts.get(item.index, 0) + 1
                run.chunk_attempts[item.index] = attempts
                task.attempts = max(task.attempts, attempts)
                if attempts >= self.max_attempts:
                    self._fail(
                        task,
                        errors.WorkerDied(
                            f"the worker process died while running this task ({attempts} "
                            f"attempt{'s' if attempts > 1 else ''})"
                        ),
                    )
                    continue
            # A bystander lost its pool, not its fault: its attempt is not counted. A call that
            # ran alone is retried alone (it stays stoppable on its own, and keeps tiny tasks
            # from queueing behind it); a culprit's merged calls are retried alone, so that the
            # one that kills its worker cannot take the others along again.
            item.solo = item.solo or not merged or exc.culprit
            self._queue.push(item)

    # --- outcomes ------------------------------------------------------------------------

    def _on_outcome(self, item: WorkItem, outcome: tuple[Any, ...]) -> None:
        task = item.task
        run = self._runs.get(task.task_id)
        if task.finished or run is None:
            return
        if outcome[0] == "error":
            _, kind, message, trace = outcome
            log.error(
                "task %s (%s) failed: %s: %s\n%s", task.task_id, task.type, kind, message, trace
            )
            self._finished(task, TaskStatus.FAILED, None, {"type": kind, "message": message})
            return
        if item.index < 0:  # the finish step
            self._finished(task, TaskStatus.COMPLETED, outcome[1], None)
            return
        run.partials[item.index] = outcome[1]
        run.remaining -= 1
        if len(run.partials) > 1:
            self._progressed(task, item.call.cost)
        if not run.remaining:
            self._finish_plan(run)

    def _finish_plan(self, run: _CpuRun) -> None:
        task, plan = run.task, run.plan
        if plan.finish is None:
            result = run.partials[0] if len(run.partials) == 1 else run.partials
            self._finished(task, TaskStatus.COMPLETED, result, None)
        elif plan.finish_in_pool:
            call = Call(plan.finish.fn, (*plan.finish.args, run.partials), plan.finish.cost)
            run.partials = []
            self._queue.push(WorkItem(task, call, -1, solo=True, order=task.seq))
        else:
            try:
                result = plan.finish.fn(*plan.finish.args, run.partials)
            except Exception as exc:
                log.exception("task %s (%s): finish step failed", task.task_id, task.type)
                self._fail(task, exc)
            else:
                self._finished(task, TaskStatus.COMPLETED, result, None)

    def _fail(self, task: Task, exc: BaseException) -> None:
        self._finished(task, TaskStatus.FAILED, None, error_of(exc))


def error_of(exc: BaseException) -> dict[str, str]:
    """The ``error`` member of a failed task's record."""
    message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return {"type": type(exc).__name__, "message": message}
