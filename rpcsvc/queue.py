"""The priority queue in front of the pool, and the merging of small work into one pool call."""

from __future__ import annotations

import heapq
import itertools
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .registry import Call

if TYPE_CHECKING:
    from .task import Task


@dataclass(eq=False, slots=True)
class WorkItem:
    """One call of one task: a chunk (``index`` >= 0) or the finish step (``index`` == -1)."""

    task: Task
    call: Call
    index: int
    solo: bool = False  # must run alone in its pool call (it may have to be stopped by itself)
    order: int = field(default=0)  # creation order of the task, kept across retries


class WorkQueue:
    """Highest priority first, then creation order; finished tasks' items are skipped lazily."""

    def __init__(self, *, max_cost_per_job: int, max_calls_per_job: int = 1024) -> None:
        self._heap: list[tuple[int, int, int, WorkItem]] = []
        self._tiebreak = itertools.count()
        self._queued_cost = 0
        self.max_cost_per_job = max_cost_per_job
        self.max_calls_per_job = max_calls_per_job

    def __len__(self) -> int:
        return len(self._heap)

    def __repr__(self) -> str:
        return f"<WorkQueue items={len(self._heap)} cost={self._queued_cost}>"

    def push(self, item: WorkItem) -> None:
        entry = (-item.task.priority, item.order, next(self._tiebreak), item)
        heapq.heappush(self._heap, entry)
        self._queued_cost += item.call.cost

    def _pop(self) -> WorkItem | None:
        while self._heap:
            item = heapq.heappop(self._heap)[3]
            self._queued_cost -= item.call.cost
            if not item.task.finished:
                return item
        return None

    def pop_job(self, workers: int) -> list[WorkItem]:
        """The next pool call's items: the head of the queue, merged with what follows it.

        Small calls are merged up to a cost budget that shares the queued work evenly among
        the workers, so 10,000 one-post tasks cost a few hundred pool round trips rather than
        10,000, while a lone task still goes out at once. Merging never skips ahead: a job is
        always a prefix of the queue's order.
        """
        first = self._pop()
        if first is None:
            return []
        items = [first]
        if first.solo:
            return items
        budget = min(
            self.max_cost_per_job, math.ceil((self._queued_cost + first.call.cost) / workers)
        )
        cost = first.call.cost
        while self._heap and len(items) < self.max_calls_per_job:
            head = self._heap[0][3]
            if head.task.finished:  # drop it; _pop() would also take the next live item
                heapq.heappop(self._heap)
                self._queued_cost -= head.call.cost
                continue
            if head.solo or cost + head.call.cost > budget:
                break
            items.append(self._pop())  # type: ignore[arg-type]
            cost += head.call.cost
        return items
