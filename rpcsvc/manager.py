"""The TaskManager: the one registry of tasks, their life cycle, and where each one stands.

CPU work goes to the process pool through a :class:`PoolDispatcher`; I/O work runs as asyncio
tasks on this loop. The manager is the only writer of task records, so every transition
happens here (and is told to ``listeners``, e.g. the state file).
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from . import errors
from .config import Settings
from .dispatch import PoolDispatcher, error_of
from .executor import Job, ProcessExecutor
from .persistence import StateFile
from .registry import Call, Plan, TaskRegistry, TaskType
from .store import TaskStore
from .task import Priority, Task, TaskStatus

log = logging.getLogger("rpcsvc.tasks")

Listener = Callable[[Task, "TaskStatus | None"], None]


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
class _Live:
    """A task not yet finished: how it runs, and what must be stopped when it ends."""

    task: Task
    task_type: TaskType
    plan: Plan | None = None
    queued: bool = False
    aio_task: asyncio.Task[Any] | None = None
    timer: asyncio.TimerHandle | None = None


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
        # Called on every transition and progress update with (task, status before it; None
        # when the task was just created): listeners need not remember each task's last state.
        self.listeners: list[Listener] = []
        self.store = TaskStore(
            result_ttl=self.settings.result_ttl, max_finished=self.settings.max_finished
        )
        self.dispatcher = PoolDispatcher(
            self.executor,
            max_cost_per_job=self.settings.chunk_size,
            max_attempts=self.settings.max_attempts,
            started=self._mark_running,
            progressed=self._add_progress,
            finished=self._finish,
        )
        self.state: StateFile | None = None
        self._live: dict[str, _Live] = {}
        self._seq = 0
        self._pending = 0
        self._accepting = True
        self._shutdown: asyncio.Future[None] | None = None
        self._grace_cut = asyncio.Event()
        self._sweeper: asyncio.Task[None] | None = None
        self._started = False

    def __repr__(self) -> str:
        return (
            f"<TaskManager tasks={len(self.store)} pending={self._pending} "
            f"live={len(self._live)} dispatcher={self.dispatcher!r} executor={self.executor!r}>"
        )

    # --- lifetime -----------------------------------------------------------------------

    async def start(self) -> None:
        if self.settings.state_file is not None:
            await self._open_state(self.settings.state_file)
        await self.executor.start()
        self._sweeper = asyncio.create_task(self.store.sweep_forever())
        self._started = True

    async def _open_state(self, path: Any) -> None:
        """Read the state file back, then write every transition through to it."""
        self.state = StateFile(path)
        restored = await asyncio.to_thread(
            self.state.load,
            result_ttl=self.settings.result_ttl,
            max_finished=self.settings.max_finished,
        )
        self.store.restore(restored.tasks, evicted=restored.evicted)
        self._seq = max(self._seq, restored.max_seq)
        self.state.start()
        self.listeners.append(self.state.record)
        self.store.on_evict = self.state.forget
        if restored.interrupted:
            log.warning(
                "%d task(s) were pending or running when the server stopped: marked failed "
                "(Interrupted)",
                len(restored.interrupted),
            )

    async def shutdown(self, grace: float | None = None) -> None:
        """Stop accepting tasks and cancel pending ones; give running ones ``grace`` seconds
        (default ``shutdown_grace``) to finish, then cancel the rest. The server keeps
        answering meanwhile. A second call waits for the first."""
        if self._shutdown is None:
            self._shutdown = asyncio.ensure_future(self._drain(grace))
        await asyncio.shield(self._shutdown)

    async def _drain(self, grace: float | None) -> None:
        self._accepting = False
        grace = self.settings.shutdown_grace if grace is None else grace
        for live in list(self._live.values()):
            if live.task.status is TaskStatus.PENDING:
                self._cancel_for_shutdown(live.task, "before it started")
        running = [live.task for live in self._live.values()]
        if running:
            log.info("shutting down: %d running task(s) get %.1f s to finish", len(running), grace)
        if running and grace > 0:
            all_done = asyncio.ensure_future(
                asyncio.wait([asyncio.ensure_future(t.wait(grace)) for t in running])
            )
            cut = asyncio.ensure_future(self._grace_cut.wait())
            await asyncio.wait([all_done, cut], return_when=asyncio.FIRST_COMPLETED)
            cut.cancel()
        for live in list(self._live.values()):
            self._cancel_for_shutdown(live.task, f"after the {grace:g} s shutdown grace")

    def end_grace(self) -> None:
        """Cut a shutdown's grace period short: running tasks are cancelled now."""
        self._grace_cut.set()

    def _cancel_for_shutdown(self, task: Task, when: str) -> None:
        error = {"type": "ShuttingDown", "message": f"cancelled: the server shut down {when}"}
        self._finish(task, TaskStatus.CANCELLED, None, error)

    async def close(self, *, grace: float | None = None) -> None:
        """Shut down (see :meth:`shutdown`), then stop every worker process and the state file."""
        await self.shutdown(grace)
        self.dispatcher.close()
        if self._sweeper is not None:
            self._sweeper.cancel()
        await self.executor.close()
        if self.state is not None:
            await self.state.close()

    async def __aenter__(self) -> TaskManager:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close(grace=0)

    @property
    def ready(self) -> bool:
        return self._started and self._accepting

    @property
    def health(self) -> str:
        """``starting``, ``ok``, or ``draining`` (shutting down: no new tasks)."""
        if not self._accepting:
            return "draining"
        return "ok" if self._started else "starting"

    @property
    def pending_count(self) -> int:
        return self._pending

    @property
    def running_count(self) -> int:
        return len(self._live) - self._pending

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
        context = TaskContext(self, None)
        if isinstance(func_or_type, str):
            if args:
                raise errors.InvalidParams("args", "registered task types take params by name")
            task_type = self.registry.get(func_or_type)
            params = task_type.validate(dict(kwargs or {}), context)
        else:
            task_type, params = _adhoc_type(func_or_type, tuple(args), dict(kwargs or {}))
        self._seq += 1
        task = Task(
            type=task_type.name,
            params=params,
            priority=priority,
            timeout=timeout,
            seq=self._seq,
            keep_result=not isinstance(func_or_type, str),
        )
        live = _Live(task, task_type)
        if task_type.kind == "cpu":
            assert task_type.plan is not None
            context.task = task
            live.plan = task_type.plan(params, context)
            task.params = None  # the plan's chunks hold the data now; keep one copy only
        self.store.add(task)
        self._live[task.task_id] = live
        self._pending += 1
        self._notify(task, None)
        return task.task_id

    def execute_task_async(self, task_id: str) -> None:
        """Queue a created task; it starts when its priority and the pool allow."""
        self.get(task_id)  # TaskNotFound / TaskEvicted for an id it does not know
        live = self._live.get(task_id)
        if live is not None:
            self._queue(live)

    def _queue(self, live: _Live) -> None:
        task = live.task
        if live.queued or task.status is not TaskStatus.PENDING:
            return
        live.queued = True
        if live.task_type.kind == "io":
            live.aio_task = asyncio.create_task(self._run_io(live))
            return
        plan = live.plan
        assert plan is not None
        if len(plan.chunks) > 1:
            task.progress = {"done": 0, "total": sum(c.cost for c in plan.chunks)}
        live.plan = None
        self.dispatcher.run(task, plan)

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
        live = self._live[self.create_task(type_name, (), params, **options)]
        self._queue(live)
        return live.task

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

    def jobs_of(self, task_id: str) -> list[Job]:
        """The pool jobs now running calls of this task (``await job.started`` gives the pid)."""
        return self.dispatcher.jobs_of(task_id)

    # --- cancel, wait ----------------------------------------------------------------------

    def cancel(self, task_id: str) -> Task:
        """Cancel a task: a pending one never runs; a running one is stopped (its process is
        killed when it runs alone; in a merged job its outcome is discarded)."""
        task = self.get(task_id)
        if not task.finished:
            self._finish(task, TaskStatus.CANCELLED)
        return task

    async def wait(self, task_id: str, timeout: float) -> Task:
        task = self.get(task_id)
        await task.wait(timeout)
        return task

    # --- transitions -------------------------------------------------------------------

    def _mark_running(self, task: Task) -> None:
        if task.status is not TaskStatus.PENDING:
            return
        task.mark_running()
        self._pending -= 1
        if task.timeout is not None:
            self._live[task.task_id].timer = asyncio.get_running_loop().call_later(
                task.timeout, self._on_timeout, task
            )
        self._notify(task, TaskStatus.PENDING)

    def _add_progress(self, task: Task, done: int) -> None:
        if task.progress is not None:
            task.progress = {"done": task.progress["done"] + done, "total": task.progress["total"]}
            self._notify(task, task.status)

    async def _run_io(self, live: _Live) -> None:
        task, task_type = live.task, live.task_type
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
            self._finish(task, TaskStatus.FAILED, None, error_of(exc))
        else:
            self._finish(task, TaskStatus.COMPLETED, result)

    def _on_timeout(self, task: Task) -> None:
        error = error_of(errors.TaskTimeout(f"Task ran past its timeout of {task.timeout} s"))
        self._finish(task, TaskStatus.FAILED, None, error)

    def _finish(
        self,
        task: Task,
        status: TaskStatus,
        result: Any = None,
        error: dict[str, str] | None = None,
    ) -> None:
        previous = task.status
        if not task.finish(status, result=result, error=error):
            return
        if previous is TaskStatus.PENDING:
            self._pending -= 1
        live = self._live.pop(task.task_id, None)
        if live is not None:
            if live.timer is not None:
                live.timer.cancel()
            if live.aio_task is not None and live.aio_task is not asyncio.current_task():
                live.aio_task.cancel()
            if live.task_type.kind == "cpu" and live.queued:
                self.dispatcher.stop(task)  # a hung or cancelled computation: kill its process
        self.store.finished(task)
        if log.isEnabledFor(logging.INFO):
            duration = task.duration
            log.info(
                "task %s %s type=%s duration=%s",
                task.task_id,
                status.value,
                task.type,
                f"{duration:.3f}s" if duration is not None else "-",
            )
        self._notify(task, previous)

    def _notify(self, task: Task, previous: TaskStatus | None) -> None:
        status = task.status
        for listener in self.listeners:
            if task.status is not status:
                return  # a listener moved the task on: that transition was told to all of them
            listener(task, previous)


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
