"""The TaskManager: the one registry of tasks, the priority queue, and their execution.

CPU work goes through the executor (a process pool); I/O work runs as asyncio tasks on this
loop. The manager is the only writer of task records, so every transition happens here.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from workers import runtime

from . import errors
from .config import Settings
from .executor import Job, ProcessExecutor
from .queue import WorkItem, WorkQueue
from .registry import Call, Plan, TaskRegistry, TaskType
from .store import TaskStore
from .task import Priority, Task, TaskStatus

log = logging.getLogger("rpcsvc.tasks")


class TaskContext:
    """What a task type's code may use: its task's progress and the server's resources."""

    def __init__(self, manager: TaskManager, task: Task | None) -> None:
        self.manager = manager
        self.task = task

    @property
    def settings(self) -> Settings:
        return self.manager.settings

    @property
    def resources(self) -> dict[str, Any]:
        return self.manager.resources

    def set_progress(self, done: int, total: int) -> None:
        if self.task is not None and not self.task.finished:
            self.task.progress = {"done": done, "total": total}


@dataclass(eq=False)
class _Run:
    """Execution state of one running task."""

    task: Task
    plan: Plan | None = None
    partials: list[Any] = field(default_factory=list)
    remaining: int = 0
    # job -> whether it carries this task's calls alone (only then may it be stopped)
    jobs: dict[Job, bool] = field(default_factory=dict)
    aio_task: asyncio.Task[Any] | None = None
    timer: asyncio.TimerHandle | None = None
    chunk_attempts: dict[int, int] = field(default_factory=dict)


class TaskManager:
    """Keeps every task, runs them by priority, and answers where each one stands."""

    def __init__(
        self,
        *,
        registry: TaskRegistry,
        settings: Settings | None = None,
        executor: ProcessExecutor | None = None,
    ) -> None:
        self.settings = settings or Settings()
        self.registry = registry
        self.executor = executor or ProcessExecutor(
            workers=self.settings.workers, max_tasks_per_child=self.settings.max_tasks_per_child
        )
        self.resources: dict[str, Any] = {}
        self.listeners: list[Callable[[Task], None]] = []  # called on every transition
        self.store = TaskStore(
            result_ttl=self.settings.result_ttl, max_finished=self.settings.max_finished
        )
        self._runs: dict[str, _Run] = {}
        self._queue = WorkQueue(max_cost_per_job=self.settings.chunk_size)
        self._seq = 0
        self._pending = 0
        self._pump_scheduled = False
        self._accepting = True
        self._sweeper: asyncio.Task[None] | None = None
        self._started = False
        self._types_of_runs: dict[str, TaskType] = {}

    def __repr__(self) -> str:
        return (
            f"<TaskManager tasks={len(self.store)} pending={self._pending} "
            f"running={len(self._runs)} queue={len(self._queue)} executor={self.executor!r}>"
        )

    # --- lifetime -----------------------------------------------------------------------

    async def start(self) -> None:
        await self.executor.start()
        self._sweeper = asyncio.create_task(self.store.sweep_forever())
        self._started = True

    async def close(self, *, grace: float | None = None) -> None:
        """Stop accepting tasks, give running ones ``grace`` seconds, cancel the rest."""
        self._accepting = False
        grace = self.settings.shutdown_grace if grace is None else grace
        running = [run.task for run in self._runs.values()]
        if running and grace > 0:
            await asyncio.wait(
                [asyncio.ensure_future(t.wait(grace)) for t in running], timeout=grace
            )
        for task in self.store:
            if not task.finished:
                self._finish(task, TaskStatus.CANCELLED, error=_error(errors.ShuttingDown()))
        if self._sweeper is not None:
            self._sweeper.cancel()
        await self.executor.close()

    async def __aenter__(self) -> TaskManager:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close(grace=0)

    @property
    def ready(self) -> bool:
        return self._started and self._accepting

    @property
    def pending_count(self) -> int:
        return self._pending

    @property
    def running_count(self) -> int:
        return len(self._runs)

    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys((s.value for s in TaskStatus), 0)
        for task in self.store:
            counts[task.status.value] += 1
        return counts

    # --- creating tasks --------------------------------------------------------------------

    def create_task(
        self,
        func_or_type: str | Callable[..., Any],
        args: tuple[Any, ...] | list[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        *,
        priority: str | Priority = Priority.NORMAL,
        timeout: float | None = None,
    ) -> str:
        """Create a pending task (not yet queued) and return its id.

        ``func_or_type`` is a registered type name (its params are ``kwargs``), or, for Python
        callers only, a top-level function of ``workers`` run in the pool (a coroutine
        function runs on the loop).
        """
        if not self._accepting:
            raise errors.ShuttingDown()
        if self._pending >= self.settings.max_pending:
            raise errors.QueueFull(
                f"Queue full: {self._pending} tasks pending (max_pending)",
                data={"pending": self._pending, "max_pending": self.settings.max_pending},
            )
        if isinstance(priority, str):
            priority = Priority.from_label(priority)
        if isinstance(func_or_type, str):
            if args:
                raise errors.InvalidParams("args", "registered task types take params by name")
            task_type = self.registry.get(func_or_type)
            params = task_type.validate(dict(kwargs or {}), TaskContext(self, None))
        else:
            task_type, params = _adhoc_type(func_or_type, tuple(args), dict(kwargs or {}))
        self._seq += 1
        task = Task(
            type=task_type.name, params=params, priority=priority, timeout=timeout, seq=self._seq
        )
        run = _Run(task)
        if task_type.kind == "cpu":
            assert task_type.plan is not None
            run.plan = task_type.plan(params, TaskContext(self, task))
            task.params = None  # the plan's chunks hold the data now; keep one copy only
        self.store.add(task)
        self._runs[task.task_id] = run
        self._pending += 1
        self._types_of_runs[task.task_id] = task_type
        self._notify(task)
        return task.task_id

    def execute_task_async(self, task_id: str) -> None:
        """Queue a created task; it starts when its priority and the pool allow."""
        task = self.get(task_id)
        run = self._runs.get(task_id)
        if run is None or task.status is not TaskStatus.PENDING or run.remaining or run.aio_task:
            return
        task_type = self._types_of_runs[task_id]
        if task_type.kind == "io":
            run.aio_task = asyncio.create_task(self._run_io(task_type, run))
            return
        plan = run.plan
        assert plan is not None
        if len(plan.chunks) == 1 and plan.finish is not None and plan.finish_in_pool:
            chunk, finish = plan.chunks[0], plan.finish
            call = Call(
                runtime.chunk_then_finish, (chunk.fn, chunk.args, finish.fn, finish.args), chunk.cost
            )
            plan = Plan(chunks=[call], finish=None)
            run.plan = plan
        run.partials = [None] * len(plan.chunks)
        run.remaining = len(plan.chunks)
        if len(plan.chunks) > 1:
            task.progress = {"done": 0, "total": sum(c.cost for c in plan.chunks)}
        solo = task.timeout is not None or len(plan.chunks) > 1
        for index, call in enumerate(plan.chunks):
            self._queue.push(WorkItem(task, call, index, solo=solo, order=task.seq))
        self._schedule_pump()

    async def execute_task_sync(self, task_id: str) -> Any:
        """Queue a task, wait for it to finish and return its result (or raise its error)."""
        self.execute_task_async(task_id)
        task = self.get(task_id)
        while not task.finished:
            await task.wait(3600)
        if task.status is TaskStatus.COMPLETED:
            return task.result
        error = task.error or {}
        raise errors.TaskError(f"{error.get('type')}: {error.get('message')}", data=error)

    def submit(self, type_name: str, params: Mapping[str, Any], **options: Any) -> Task:
        """Create and queue in one step; the record is returned."""
        task_id = self.create_task(type_name, (), params, **options)
        self.execute_task_async(task_id)
        return self.store.get(task_id)

    # --- convenience methods of the original design ---------------------------------------

    def schedule_data_collection(
        self, platform: str, entity_ids: list[str], *, priority: str = "normal", **params: Any
    ) -> str:
        """Collect posts of ``entity_ids`` from ``platform`` into the content store."""
        params = {"platform": platform, "entity_ids": entity_ids, **params}
        return self.submit("collect_platform_data", params, priority=priority).task_id

    def schedule_content_analysis(
        self,
        content_ids_or_posts: list[Any],
        analysis_types: list[str] | None = None,
        *,
        priority: str = "normal",
        **params: Any,
    ) -> str:
        """Analyse posts given inline (dicts or strings) or by ``content_id`` (strings with ':')."""
        items = list(content_ids_or_posts)
        if items and all(isinstance(i, dict) for i in items):
            params["posts"] = items
        elif items and all(isinstance(i, str) and ":" in i for i in items):
            params["content_ids"] = items
        else:
            params["texts"] = items
        if analysis_types is not None:
            params["analysis_types"] = analysis_types
        return self.submit("analyze_content", params, priority=priority).task_id

    def schedule_relationship_analysis(self, *, priority: str = "normal", **params: Any) -> str:
        """Interaction graph, central actors and communities of posts (inline or content_ids)."""
        return self.submit("analyze_relationships", params, priority=priority).task_id

    def schedule_report(self, *, priority: str = "normal", **params: Any) -> str:
        """A report (json, markdown or html) from posts, content_ids or finished task ids."""
        return self.submit("generate_report", params, priority=priority).task_id

    # --- reading tasks -----------------------------------------------------------------

    def get(self, task_id: str) -> Task:
        """The task, or TaskNotFound / TaskEvicted."""
        return self.store.get(task_id)

    def get_task_status(self, task_id: str) -> dict[str, Any]:
        return self.get(task_id).to_dict()

    def get_all_tasks(self) -> list[dict[str, Any]]:
        return [t.to_dict(with_result=False) for t in self.store]

    def list_tasks(
        self, *, status: str | None, type: str | None, limit: int, before_seq: int | None
    ) -> tuple[list[Task], int | None]:
        return self.store.page(status=status, type=type, limit=limit, before_seq=before_seq)

    # --- cancel, wait ----------------------------------------------------------------------

    def cancel(self, task_id: str) -> Task:
        task = self.get(task_id)
        if not task.finished:
            self._finish(task, TaskStatus.CANCELLED)
        return task

    async def wait(self, task_id: str, timeout: float) -> Task:
        task = self.get(task_id)
        await task.wait(timeout)
        return task

    # --- running -----------------------------------------------------------------------

    def _schedule_pump(self) -> None:
        # Deferred to the next loop turn so that a JSON-RPC batch of creates is queued whole
        # before dispatch, and can be merged into few pool calls.
        if not self._pump_scheduled:
            self._pump_scheduled = True
            asyncio.get_running_loop().call_soon(self._pump)

    def _pump(self) -> None:
        self._pump_scheduled = False
        capacity = self.executor.capacity
        while self.executor.running < capacity and self._queue:
            items = self._queue.pop_job(capacity)
            if not items:
                break
            for item in items:
                self._mark_running(item.task)
            job = self.executor.submit([item.call for item in items])
            alone = all(item.task is items[0].task for item in items)
            for item in items:
                self._runs[item.task.task_id].jobs[job] = alone
            job.future.add_done_callback(functools.partial(self._on_job_done, items, job))

    def _mark_running(self, task: Task) -> None:
        if task.status is TaskStatus.PENDING:
            task.mark_running()
            self._pending -= 1
            if task.timeout is not None:
                run = self._runs[task.task_id]
                run.timer = asyncio.get_running_loop().call_later(
                    task.timeout, self._on_timeout, task
                )
            self._notify(task)

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

    def _retry_after_death(self, items: list[WorkItem], exc: errors.WorkerDied, merged: bool) -> None:
        for item in items:
            task = item.task
            run = self._runs.get(task.task_id)
            if task.finished or run is None:
                continue
            if exc.culprit:
                attempts = run.chunk_attempts.get(item.index, 0) + 1
                run.chunk_attempts[item.index] = attempts
                task.attempts = max(task.attempts, attempts)
                if attempts >= self.settings.max_attempts:
                    self._fail(
                        task,
                        errors.WorkerDied(
                            f"the worker process died while running this task "
                            f"({attempts} attempts)"
                        ),
                    )
                    continue
            # Retried alone, so that a task that kills its worker cannot take others along.
            item.solo = item.solo or merged
            self._queue.push(item)

    def _on_outcome(self, item: WorkItem, outcome: tuple[Any, ...]) -> None:
        task = item.task
        run = self._runs.get(task.task_id)
        if task.finished or run is None:
            return
        if outcome[0] == "error":
            _, kind, message, trace = outcome
            log.error("task %s (%s) failed: %s: %s\n%s", task.task_id, task.type, kind, message, trace)
            self._finish(task, TaskStatus.FAILED, error={"type": kind, "message": message})
            return
        if item.index < 0:  # the finish step
            self._finish(task, TaskStatus.COMPLETED, result=outcome[1])
            return
        run.partials[item.index] = outcome[1]
        run.remaining -= 1
        if task.progress is not None:
            task.progress = {
                "done": task.progress["done"] + item.call.cost,
                "total": task.progress["total"],
            }
            self._notify(task)
        if run.remaining:
            return
        plan = run.plan
        assert plan is not None
        if plan.finish is None:
            result = run.partials[0] if len(run.partials) == 1 else run.partials
            self._finish(task, TaskStatus.COMPLETED, result=result)
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
                self._finish(task, TaskStatus.COMPLETED, result=result)

    async def _run_io(self, task_type: TaskType, run: _Run) -> None:
        task = run.task
        self._mark_running(task)
        assert task_type.run is not None and task.params is not None
        try:
            result = await task_type.run(task.params, TaskContext(self, task))
        except asyncio.CancelledError:
            if not task.finished:
                self._finish(task, TaskStatus.CANCELLED)
            raise
        except Exception as exc:
            log.exception("task %s (%s) failed", task.task_id, task.type)
            self._fail(task, exc)
        else:
            self._finish(task, TaskStatus.COMPLETED, result=result)

    def _on_timeout(self, task: Task) -> None:
        self._fail(task, errors.TaskTimeout(f"Task ran past its timeout of {task.timeout} s"))

    def _fail(self, task: Task, exc: BaseException) -> None:
        self._finish(task, TaskStatus.FAILED, error=_error(exc))

    def _finish(
        self,
        task: Task,
        status: TaskStatus,
        *,
        result: Any = None,
        error: dict[str, str] | None = None,
    ) -> None:
        was_pending = task.status is TaskStatus.PENDING
        if not task.finish(status, result=result, error=error):
            return
        if was_pending:
            self._pending -= 1
        run = self._runs.pop(task.task_id, None)
        self._types_of_runs.pop(task.task_id, None)
        if run is not None:
            if run.timer is not None:
                run.timer.cancel()
            if run.aio_task is not None and run.aio_task is not asyncio.current_task():
                run.aio_task.cancel()
            for job, alone in run.jobs.items():
                # In a merged job the others' calls finish and this task's outcome is simply
                # discarded; a job of this task alone is stopped, freeing its worker.
                if alone:
                    self.executor.kill(job)
        self.store.finished(task)
        log.info(
            "task %s %s type=%s duration=%s",
            task.task_id,
            status.value,
            task.type,
            f"{task.duration:.3f}s" if task.duration is not None else "-",
        )
        self._notify(task)
        self._schedule_pump()

    def _notify(self, task: Task) -> None:
        for listener in self.listeners:
            listener(task)


def _error(exc: BaseException) -> dict[str, str]:
    message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return {"type": type(exc).__name__, "message": message}


def _adhoc_type(
    fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[TaskType, dict[str, Any]]:
    """A one-off type for a Python caller's function (never reachable from the network)."""
    name = f"{fn.__module__}.{fn.__qualname__}"
    schema: dict[str, Any] = {"type": "object"}
    params = {"args": list(args), "kwargs": kwargs}
    if inspect.iscoroutinefunction(fn):

        async def run(params: dict[str, Any], context: TaskContext) -> Any:
            return await fn(*args, **kwargs)

        return TaskType(name=name, kind="io", description="", params_schema=schema, run=run), params
    call = Call(functools.partial(fn, **kwargs) if kwargs else fn, args)
    return (
        TaskType(
            name=name,
            kind="cpu",
            description="",
            params_schema=schema,
            plan=lambda p, c: Plan(chunks=[call]),
        ),
        params,
    )
