"""Logging: plain text for people or one JSON object a line for log shippers.

Every task transition is one line on the ``rpcsvc.tasks`` logger with the task id, its type
and a duration: ``pending`` (with its priority), ``running`` (with the time it waited in the
queue) and the final state (with its run time; that line is the TaskManager's own). In JSON,
these fields are members of their own (``task_id``, ``type``, ``status``, ``waited``,
``duration``), ready to filter on.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TextIO

import orjson

from .manager import TaskManager
from .task import Task, TaskStatus

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
TASK_LOGGER = "rpcsvc.tasks"

task_log = logging.getLogger(TASK_LOGGER)

# The TaskManager's own line for a finished task: its args become JSON members.
_FINISH_FORMAT = "task %s %s type=%s duration=%s"
_RECORD_ATTRS = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
}


def configure_logging(
    level: str = "INFO", fmt: str = "text", *, stream: TextIO | None = None
) -> None:
    """Send every log record to ``stream`` (stderr) as ``text`` or ``json``; replaces handlers.

    For the server process: three lines a task at INFO were most of a tiny task's cost. What
    our formats never print is not collected (the logging HOWTO's "Optimization": caller,
    thread, process), and lines are written in batches (:class:`BatchingStreamHandler`).
    """
    logging._srcfile = None
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    handler = BatchingStreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter(TEXT_FORMAT))
    handler.addFilter(add_task_fields)
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)


class BatchingStreamHandler(logging.StreamHandler):
    """A stream handler that writes lines in batches: one write a quarter second (or every
    64 KiB) instead of one per line, a system call that cost more than the line itself here.

    A WARNING or worse is written at once with whatever came before it, as is anything logged
    where no event loop runs (start-up, other threads); the rest waits at most FLUSH_INTERVAL.
    A stream that fails (a reader gone) loses the lines and never stops the caller.
    """

    FLUSH_INTERVAL = 0.25
    FLUSH_BYTES = 64 * 1024

    def __init__(self, stream: TextIO) -> None:
        super().__init__(stream)
        self._lines: list[str] = []
        self._size = 0
        self._timer: asyncio.TimerHandle | None = None
        self._timer_loop: asyncio.AbstractEventLoop | None = None

    def emit(self, record: logging.LogRecord) -> None:  # called with the handler's lock held
        try:
            line = self.format(record) + self.terminator
        except Exception:
            self.handleError(record)
            return
        self._lines.append(line)
        self._size += len(line)
        if record.levelno >= logging.WARNING or self._size >= self.FLUSH_BYTES:
            self.flush()
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.flush()
            return
        if self._timer is None or self._timer_loop is not loop:  # none pending on this loop
            self._timer_loop = loop
            self._timer = loop.call_later(self.FLUSH_INTERVAL, self._flush_later)

    def _flush_later(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            self._timer = None
            self.flush()

    def flush(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            text, self._lines, self._size = "".join(self._lines), [], 0
            try:
                if text:
                    self.stream.write(text)
                self.stream.flush()
            except Exception:
                pass  # a closed or broken stream: the lines are lost, the caller goes on

    def close(self) -> None:
        self.flush()  # logging.basicConfig(force=True) closes handlers without flushing them
        super().close()


class _SecondCache:
    """``strftime`` of a timestamp's whole second, made once per second (per format)."""

    def __init__(self, render: Callable[[int], str]) -> None:
        self._render = render
        self._second = -1
        self._text = ""

    def __call__(self, timestamp: float) -> str:
        second = int(timestamp)
        if second != self._second:
            self._second, self._text = second, self._render(second)
        return self._text


class TextFormatter(logging.Formatter):
    """logging.Formatter with its time (local, ``2026-12-03 14:53:26,382``) made once a second."""

    def __init__(self, fmt: str) -> None:
        super().__init__(fmt)
        self._seconds = _SecondCache(
            lambda s: time.strftime(self.default_time_format, self.converter(s))
        )

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        if datefmt is not None:
            return super().formatTime(record, datefmt)
        return f"{self._seconds(record.created)},{int(record.msecs):03d}"


_utc_seconds = _SecondCache(lambda s: datetime.fromtimestamp(s, UTC).strftime("%Y-%m-%dT%H:%M:%S"))


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, the record's extras, exception."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": f"{_utc_seconds(record.created)}.{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _RECORD_ATTRS and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return orjson.dumps(entry, default=str).decode()


def add_task_fields(record: logging.LogRecord) -> bool:
    """Give the TaskManager's finish line the same structured fields as ours."""
    if record.name == TASK_LOGGER and record.msg == _FINISH_FORMAT and len(record.args or ()) == 4:
        task_id, status, task_type, duration = record.args  # type: ignore[misc]
        record.task_id, record.status, record.type = task_id, status, task_type
        text = str(duration)  # "0.123s", or "-" for a task that never started
        record.duration = float(text[:-1]) if text.endswith("s") else None
    return True


class TaskTransitionLog:
    """The manager listener that writes the ``pending`` and ``running`` lines."""

    def __call__(self, task: Task, previous: TaskStatus | None) -> None:
        status = task.status
        if not task_log.isEnabledFor(logging.INFO) or previous is status or status.finished:
            return  # off, a progress update, or the finish (logged by the manager itself)
        fields: dict[str, Any] = {
            "task_id": task.task_id,
            "type": task.type,
            "status": status.value,
        }
        if status is TaskStatus.PENDING:
            fields["priority"] = task.priority.label
            task_log.info(
                "task %s pending type=%s priority=%s",
                task.task_id,
                task.type,
                fields["priority"],
                extra=fields,
            )
        elif task.started_at is not None:
            fields["waited"] = round(task.started_at - task.created_at, 6)
            task_log.info(
                "task %s running type=%s waited=%.3fs",
                task.task_id,
                task.type,
                fields["waited"],
                extra=fields,
            )


def setup_task_logging(manager: TaskManager) -> None:
    """Log every transition of ``manager``'s tasks on ``rpcsvc.tasks``."""
    manager.listeners.append(TaskTransitionLog())
