"""The in-memory registry of task records: lookup, newest-first paging, bounded retention."""

from __future__ import annotations

import asyncio
import bisect
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator

from . import errors
from .task import Task

EVICTED_IDS_KEPT = 1_000_000  # evicted ids remembered, to tell "evicted" from "never existed"


class TaskStore:
    """Every task by id. Finished tasks are kept ``result_ttl`` seconds and at most
    ``max_finished`` of them (oldest evicted first); pending and running ones are never evicted.
    """

    def __init__(self, *, result_ttl: float, max_finished: int) -> None:
        self.result_ttl = result_ttl
        self.max_finished = max_finished
        self._tasks: dict[str, Task] = {}
        self._order: list[Task] = []  # creation order (ascending seq), for paging
        self._finished: OrderedDict[str, float] = OrderedDict()
        self._evicted: OrderedDict[str, None] = OrderedDict()
        self.on_evict: Callable[[str], None] | None = None  # e.g. the state file forgets it

    def __repr__(self) -> str:
        return f"<TaskStore tasks={len(self._tasks)} finished={len(self._finished)}>"

    def __len__(self) -> int:
        return len(self._tasks)

    def __iter__(self) -> Iterator[Task]:
        return iter(list(self._tasks.values()))

    def add(self, task: Task) -> None:
        self._tasks[task.task_id] = task
        self._order.append(task)

    def restore(self, tasks: Iterable[Task], *, evicted: Iterable[str] = ()) -> None:
        """Take back finished tasks read from a state file (before any new task is added)."""
        for task_id in evicted:
            self._evicted[task_id] = None
        tasks = sorted(tasks, key=lambda t: t.seq)
        for task in tasks:
            self.add(task)
        for task in sorted(tasks, key=lambda t: t.finished_at or 0.0):
            self.finished(task)

    def get(self, task_id: str) -> Task:
        task = self._tasks.get(task_id)
        if task is not None and task.finished and self._expired(task, time.time()):
            self._evict(task_id)
            task = None
        if task is None:
            if task_id in self._evicted:
                raise errors.TaskEvicted(
                    f"Task {task_id} finished and was evicted (result_ttl / max_finished)",
                    data={"task_id": task_id},
                )
            raise errors.TaskNotFound(f"Task {task_id} not found", data={"task_id": task_id})
        return task

    def page(
        self, *, status: str | None, type: str | None, limit: int, before_seq: int | None
    ) -> tuple[list[Task], int | None]:
        """Newest first; ``before_seq`` is the cursor (the seq of the last task of a page)."""
        if len(self._order) > 2 * len(self._tasks) + 1024:
            self._order = [t for t in self._order if t.task_id in self._tasks]
        end = len(self._order)
        if before_seq is not None:
            end = bisect.bisect_left(self._order, before_seq, key=lambda t: t.seq)
        page: list[Task] = []
        for i in range(end - 1, -1, -1):
            task = self._order[i]
            if task.task_id not in self._tasks:
                continue
            if (status is None or task.status == status) and (type is None or task.type == type):
                page.append(task)
                if len(page) == limit:
                    return page, task.seq if i > 0 else None
        return page, None

    def finished(self, task: Task) -> None:
        """Record that ``task`` finished; evicts the oldest finished ones over the cap."""
        self._finished[task.task_id] = task.finished_at or time.time()
        while len(self._finished) > self.max_finished:
            self._evict(next(iter(self._finished)))

    def _expired(self, task: Task, now: float) -> bool:
        return task.finished_at is not None and now - task.finished_at > self.result_ttl

    def _evict(self, task_id: str) -> None:
        self._tasks.pop(task_id, None)
        self._finished.pop(task_id, None)
        self._evicted[task_id] = None
        if len(self._evicted) > EVICTED_IDS_KEPT:
            self._evicted.popitem(last=False)
        if self.on_evict is not None:
            self.on_evict(task_id)

    def evict_expired(self) -> int:
        deadline = time.time() - self.result_ttl
        evicted = 0
        while self._finished:
            task_id, finished_at = next(iter(self._finished.items()))
            if finished_at > deadline:
                break
            self._evict(task_id)
            evicted += 1
        return evicted

    async def sweep_forever(self) -> None:
        """Evict expired results in the background (lookups also check on their own)."""
        interval = min(1.0, max(self.result_ttl / 4, 0.01))
        while True:
            await asyncio.sleep(interval)
            self.evict_expired()
