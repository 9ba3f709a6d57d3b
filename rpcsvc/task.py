"""The task record: states, priorities, and the JSON shape callers see."""

from __future__ import annotations

import asyncio
import enum
import time
import uuid
from datetime import UTC, datetime
from typing import Any

# Params lists longer than this are summarised by their count in the record callers see, so
# that a 200,000-post task does not echo its input on every task.status.
PARAMS_LIST_ECHO_LIMIT = 100


class TaskStatus(enum.StrEnum):
    """Task states; the README maps them to Celery's (PENDING, STARTED, SUCCESS, ...)."""

    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in _FINISHED


_FINISHED = frozenset({TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED})

CELERY_STATES = {
    TaskStatus.PENDING: "PENDING",
    TaskStatus.RUNNING: "STARTED",
    TaskStatus.COMPLETED: "SUCCESS",
    TaskStatus.FAILED: "FAILURE",
    TaskStatus.CANCELLED: "REVOKED",
}


class Priority(enum.IntEnum):
    """Higher runs first; equal priorities keep their creation order."""

    LOW = 0
    NORMAL = 1
    HIGH = 2
    CRITICAL = 3

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def from_label(cls, label: str) -> Priority:
        return cls[label.upper()]


PRIORITY_LABELS = [p.label for p in Priority]


def isoformat(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="microseconds").replace(
        "+00:00", "Z"
    )


def summarise_params(params: dict[str, Any]) -> dict[str, Any]:
    """``params`` as echoed to callers: long lists are replaced by ``{"count": n}``."""
    summary: dict[str, Any] = {}
    for key, value in params.items():
        if isinstance(value, list) and len(value) > PARAMS_LIST_ECHO_LIMIT:
            summary[key] = {"count": len(value)}
        else:
            summary[key] = value
    return summary


class Task:
    """One task's record and its life cycle; the TaskManager is the only writer."""

    __slots__ = (
        "_done",
        "attempts",
        "created_at",
        "error",
        "finished_at",
        "params",
        "params_summary",
        "priority",
        "progress",
        "result",
        "seq",
        "started_at",
        "status",
        "task_id",
        "timeout",
        "type",
    )

    def __init__(
        self,
        *,
        type: str,
        params: dict[str, Any],
        priority: Priority,
        timeout: float | None,
        seq: int,
    ) -> None:
        self.task_id = str(uuid.uuid4())
        self.type = type
        self.params: dict[str, Any] | None = params  # dropped once finished, to free memory
        self.params_summary = summarise_params(params)
        self.priority = priority
        self.timeout = timeout
        self.seq = seq
        self.status = TaskStatus.PENDING
        self.created_at = time.time()
        self.started_at: float | None = None
        self.finished_at: float | None = None
        self.progress: dict[str, int] | None = None
        self.result: Any = None
        self.error: dict[str, str] | None = None
        self.attempts = 0
        self._done: asyncio.Future[None] | None = None

    def __repr__(self) -> str:
        return (
            f"<Task {self.task_id} {self.type} {self.status.value} "
            f"priority={self.priority.label} progress={self.progress}>"
        )

    @property
    def finished(self) -> bool:
        return self.status.finished

    @property
    def duration(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return self.finished_at - self.started_at

    def mark_running(self) -> None:
        if self.status is TaskStatus.PENDING:
            self.status = TaskStatus.RUNNING
            self.started_at = time.time()

    def finish(
        self, status: TaskStatus, *, result: Any = None, error: dict[str, str] | None = None
    ) -> bool:
        """Move to a final state; returns False (and changes nothing) if already finished."""
        if self.finished:
            return False
        self.status = status
        self.finished_at = time.time()
        self.result = result
        self.error = error
        self.params = None
        if self._done is not None and not self._done.done():
            self._done.set_result(None)
        return True

    async def wait(self, timeout: float) -> None:
        """Wait until the task is finished or ``timeout`` seconds pass, whichever is first."""
        if self.finished:
            return
        if self._done is None:
            self._done = asyncio.get_running_loop().create_future()
        try:
            await asyncio.wait_for(asyncio.shield(self._done), timeout)
        except TimeoutError:
            pass

    def to_dict(self, *, with_result: bool = True) -> dict[str, Any]:
        record: dict[str, Any] = {
            "task_id": self.task_id,
            "type": self.type,
            "status": self.status.value,
            "priority": self.priority.label,
            "params": self.params_summary,
            "timeout": self.timeout,
            "created_at": isoformat(self.created_at),
            "started_at": isoformat(self.started_at),
            "finished_at": isoformat(self.finished_at),
            "progress": self.progress,
            "error": self.error,
        }
        if with_result:
            record["result"] = self.result
        return record
