"""The task record: states, priorities, and the JSON shape callers see."""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import os
import time
from datetime import UTC, datetime
from typing import Any

import orjson

log = logging.getLogger("rpcsvc.tasks")

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
        return _PRIORITY_BY_LABEL[label.lower()]


PRIORITY_LABELS = [p.label for p in Priority]
_PRIORITY_BY_LABEL = {p.label: p for p in Priority}
# Plain strings for the record: an enum's .value and .name are slow attribute lookups.
_STATUS_TEXT = {s: s.value for s in TaskStatus}
_JSON_OPTIONS = orjson.OPT_SERIALIZE_NUMPY


class _InJson:
    """Stands for a result that is kept only inside the finished record's JSON."""


_IN_JSON: Any = _InJson()


_second_prefix: tuple[int, str] = (-1, "")


def isoformat(timestamp: float | None) -> str | None:
    """``2026-12-03T14:39:27.051901Z``. The date-and-seconds prefix is reused within a second:
    formatting datetimes showed up in profiles of bulk task creation."""
    global _second_prefix
    if timestamp is None:
        return None
    second = int(timestamp)
    micros = round((timestamp - second) * 1_000_000)  # rounded as datetime does
    if micros >= 1_000_000:
        second, micros = second + 1, micros - 1_000_000
    if _second_prefix[0] != second:
        prefix = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        _second_prefix = (second, prefix)
    return f"{_second_prefix[1]}.{micros:06d}Z"


def summarise_params(params: dict[str, Any]) -> dict[str, Any]:
    """``params`` as echoed to callers: long lists are replaced by ``{"count": n}``."""
    summary: dict[str, Any] = {}
    for key, value in params.items():
        if isinstance(value, list) and len(value) > PARAMS_LIST_ECHO_LIMIT:
            summary[key] = {"count": len(value)}
        else:
            summary[key] = value
    return summary


_random_pool = bytearray()


def new_task_id() -> str:
    """A UUID4 string. Randomness is drawn from the OS 4 KiB at a time (one getrandom call per
    256 ids instead of one per id), and formatted directly: both showed up in profiles of bulk
    task creation."""
    global _random_pool
    if len(_random_pool) < 16:
        _random_pool = bytearray(os.urandom(4096))
    raw = _random_pool[:16]
    del _random_pool[:16]
    raw[6] = (raw[6] & 0x0F) | 0x40  # version 4
    raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


class Task:
    """One task's record and its life cycle; the TaskManager is the only writer."""

    __slots__ = (
        "_created_at",
        "_finished_at",
        "_iso",
        "_json_full",
        "_json_summary",
        "_result",
        "_started_at",
        "_waiters",
        "attempts",
        "error",
        "keep_result",
        "params",
        "params_summary",
        "priority",
        "progress",
        "seq",
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
        keep_result: bool = False,
    ) -> None:
        self.task_id = new_task_id()
        self.type = type
        self.params: dict[str, Any] | None = params  # dropped once finished, to free memory
        self.params_summary = summarise_params(params)
        self.priority = priority
        self.timeout = timeout
        self.seq = seq
        self.status = TaskStatus.PENDING
        # ISO strings are made once per timestamp, not on every read of the record
        self._iso: dict[str, str | None] = {"started_at": None, "finished_at": None}
        self._started_at: float | None = None
        self._finished_at: float | None = None
        self.created_at = time.time()
        self.progress: dict[str, int] | None = None
        self.error: dict[str, str] | None = None
        self.attempts = 0
        # Futures of callers waiting for the end, each with the timer that releases it earlier.
        self._waiters: dict[asyncio.Future[Any], asyncio.TimerHandle] | None = None
        # A finished record never changes: its JSON is made once, however often it is read,
        # and then holds the result (see compact()).
        self._result: Any = None
        # A Python caller's own function may return any picklable value: kept as it is.
        self.keep_result = keep_result
        self._json_full: bytes | None = None
        self._json_summary: bytes | None = None

    def __repr__(self) -> str:
        return (
            f"<Task {self.task_id} {self.type} {self.status.value} "
            f"priority={self.priority.label} progress={self.progress}>"
        )

    @property
    def finished(self) -> bool:
        return self.status in _FINISHED

    @property
    def created_at(self) -> float:
        return self._created_at

    @created_at.setter
    def created_at(self, value: float) -> None:
        self._created_at = value
        self._iso["created_at"] = isoformat(value)

    @property
    def started_at(self) -> float | None:
        return self._started_at

    @started_at.setter
    def started_at(self, value: float | None) -> None:
        self._started_at = value
        self._iso["started_at"] = isoformat(value)

    @property
    def finished_at(self) -> float | None:
        return self._finished_at

    @finished_at.setter
    def finished_at(self, value: float | None) -> None:
        self._finished_at = value
        self._iso["finished_at"] = isoformat(value)

    @property
    def result(self) -> Any:
        """The task type's result once completed (None before, and for failed tasks)."""
        if self._result is _IN_JSON:
            return orjson.loads(self._json_full)["result"]  # type: ignore[arg-type]
        return self._result

    @result.setter
    def result(self, value: Any) -> None:
        self._result = value
        self._json_full = self._json_summary = None

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
        if not self.keep_result:
            self.compact()
        waiters, self._waiters = self._waiters, None
        if waiters:
            for waiter, timer in waiters.items():
                timer.cancel()
                self._answer(waiter)
        return True

    def compact(self) -> None:
        """Serialise the finished record now and keep the result only inside that JSON.

        The JSON is what every later read sends anyway, and it takes a fraction of the memory
        of the result's Python objects (a bulk task's rows: several times less). A result
        that cannot be serialised stays as it is; reading the record then reports it.
        """
        if not self.finished or self._result is _IN_JSON:
            return
        try:
            self.record_json()
        except TypeError:
            log.warning("task %s: result is not JSON-serialisable", self.task_id)
            return
        if self._result is not None:
            self._result = _IN_JSON

    def record_when_finished(self, timeout: float) -> asyncio.Future[Any]:
        """A future of the record (as :meth:`to_json` gives it) once the task has finished, or
        as it is when ``timeout`` seconds have passed, whichever is first.

        A future and a timer per waiter, no coroutine: a batch of 500 ``task.wait`` calls
        costs 500 of these rather than 500 asyncio tasks.
        """
        loop = asyncio.get_running_loop()
        waiter = loop.create_future()
        if self.finished or timeout <= 0:
            self._answer(waiter)
            return waiter
        if self._waiters is None:
            self._waiters = {}
        self._waiters[waiter] = loop.call_later(timeout, self._answer, waiter)
        waiter.add_done_callback(self._forget)
        return waiter

    @property
    def waiting(self) -> int:
        """Callers now waiting for this task to finish."""
        return len(self._waiters) if self._waiters else 0

    def _answer(self, waiter: asyncio.Future[Any]) -> None:
        if not waiter.done():
            try:
                waiter.set_result(self.to_json())
            except TypeError as exc:  # a result that is not JSON: the caller is told
                waiter.set_exception(exc)

    def _forget(self, waiter: asyncio.Future[Any]) -> None:
        # Timed out or cancelled (a caller that went away): drop it before the task ends.
        if self._waiters is not None:
            timer = self._waiters.pop(waiter, None)
            if timer is not None:
                timer.cancel()

    async def wait(self, timeout: float) -> None:
        """Wait until the task is finished or ``timeout`` seconds pass, whichever is first."""
        if not self.finished:
            # the end is what is waited for here, not the record (whose result may not be JSON)
            with contextlib.suppress(TypeError):
                await self.record_when_finished(timeout)

    def to_dict(self, *, with_result: bool = True) -> dict[str, Any]:
        record: dict[str, Any] = {
            "task_id": self.task_id,
            "type": self.type,
            "status": _STATUS_TEXT[self.status],
            "priority": PRIORITY_LABELS[self.priority],
            "params": self.params_summary,
            "timeout": self.timeout,
            "created_at": self._iso["created_at"],
            "started_at": self._iso["started_at"],
            "finished_at": self._iso["finished_at"],
            "progress": self.progress,
            "error": self.error,
        }
        if with_result:
            record["result"] = self.result
        return record

    def record_json(self, *, with_result: bool = True) -> bytes:
        """The record serialised; made once and kept once the task has finished."""
        if not self.finished:
            return orjson.dumps(self.to_dict(with_result=with_result), option=_JSON_OPTIONS)
        cached = self._json_full if with_result else self._json_summary
        if cached is None:
            body = orjson.dumps(self.to_dict(with_result=with_result), option=_JSON_OPTIONS)
            # A copy of exactly its length: orjson's own bytes object keeps its whole write
            # buffer (measured: 8 KiB held for a 1 KiB record, for as long as the task is kept).
            cached = memoryview(body).tobytes()
            if with_result:
                self._json_full = cached
            else:
                self._json_summary = cached
        return cached

    def to_json(self, *, with_result: bool = True) -> orjson.Fragment | dict[str, Any]:
        """The record for a JSON-RPC answer: the kept JSON once finished, else a dict."""
        if not self.finished:
            return self.to_dict(with_result=with_result)
        return orjson.Fragment(self.record_json(with_result=with_result))
