"""Optional persistence of task records in SQLite (``--state-file PATH``; standard library).

Task records and finished results are written through without slowing the hot path: each
transition the TaskManager notifies only marks its task dirty; every ``FLUSH_INTERVAL`` the
dirty records are snapshotted on the loop (one small dict each) and a writer thread serialises
and upserts them in one transaction. A task created and finished within one interval is
written once.

At start the file is read back: finished tasks answer ``task.status`` again (within
``result_ttl`` and ``max_finished``, like any other), evicted ones still say "evicted", and
tasks that were pending or running when the server stopped are marked ``failed`` with an
``Interrupted`` error ("interrupted by restart"). They are not resumed: their input (up to
hundreds of thousands of posts) is not stored, which keeps every write small, and the caller
decides whether the work is still wanted.

A crash of the server loses at most the last ``FLUSH_INTERVAL`` of transitions (SQLite in WAL
mode with ``synchronous=NORMAL`` survives a process crash; a power cut may lose a little more).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from .errors import Interrupted
from .store import EVICTED_IDS_KEPT
from .task import Priority, Task, TaskStatus

log = logging.getLogger(__name__)

FLUSH_INTERVAL = 0.1  # seconds between batched writes (what a crash may lose)
EVICTED = "evicted"  # the status of a row whose record was evicted (kept to say so)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS tasks (
    task_id     TEXT PRIMARY KEY,
    seq         INTEGER NOT NULL,
    status      TEXT NOT NULL,
    created_at  REAL,
    started_at  REAL,
    finished_at REAL,
    record      BLOB
)
"""
_UPSERT = "INSERT OR REPLACE INTO tasks VALUES (?, ?, ?, ?, ?, ?, ?)"
_EVICT = f"INSERT OR REPLACE INTO tasks (task_id, seq, status) VALUES (?, 0, '{EVICTED}')"
_JSON_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS

Row = tuple[str, int, str, float, "float | None", "float | None", "dict[str, Any] | bytes"]


@dataclass
class Restored:
    """What a state file gave back at start."""

    tasks: list[Task] = field(default_factory=list)  # finished, including the interrupted
    interrupted: list[Task] = field(default_factory=list)
    evicted: list[str] = field(default_factory=list)
    max_seq: int = 0


class StateFile:
    """Task records in one SQLite file, written from a background thread."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._dirty: dict[str, Task] = {}
        self._forgotten: list[str] = []
        self._batches: queue.SimpleQueue[tuple[list[Row], list[str]] | None] = queue.SimpleQueue()
        self._flush_handle: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._writer: threading.Thread | None = None
        self.writes = 0  # rows written, for tests and benchmarks

    def __repr__(self) -> str:
        return f"<StateFile {self.path} dirty={len(self._dirty)} written={self.writes}>"

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute(_SCHEMA)
        return conn

    # --- reading back (in a thread, before the server starts) ----------------------------

    def load(self, *, result_ttl: float, max_finished: int) -> Restored:
        """Read every record; mark interrupted tasks failed and expired ones evicted."""
        restored = Restored()
        now = time.time()
        finished: list[Task] = []
        conn = self._connect()
        try:
            rows = conn.execute(
                "SELECT task_id, seq, status, created_at, started_at, finished_at, record "
                "FROM tasks ORDER BY seq"
            )
            for task_id, seq, status, created, started, ended, blob in rows:
                restored.max_seq = max(restored.max_seq, seq)
                if status == EVICTED or blob is None:
                    restored.evicted.append(task_id)
                    continue
                task = _task_from_row(task_id, seq, status, created, started, ended, blob)
                if not task.finished:
                    _interrupt(task, now)
                    restored.interrupted.append(task)
                elif now - (task.finished_at or now) > result_ttl:
                    restored.evicted.append(task_id)
                    continue
                finished.append(task)
            finished.sort(key=lambda t: t.finished_at or now)
            over_cap = len(finished) - max_finished
            if over_cap > 0:
                restored.evicted.extend(t.task_id for t in finished[:over_cap])
                finished = finished[over_cap:]
            restored.tasks = finished
            with conn:
                conn.executemany(_UPSERT, [_row_values(_row(t)) for t in restored.interrupted])
                conn.executemany(_EVICT, [(task_id,) for task_id in restored.evicted])
                _trim_evicted(conn)
        finally:
            conn.close()
        restored.evicted = restored.evicted[-EVICTED_IDS_KEPT:]
        log.info(
            "state file %s: %d finished task(s) restored, %d interrupted, %d evicted",
            self.path,
            len(restored.tasks) - len(restored.interrupted),
            len(restored.interrupted),
            len(restored.evicted),
        )
        return restored

    # --- writing through -----------------------------------------------------------------

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._writer = threading.Thread(
            target=self._write_forever, name="rpcsvc-state", daemon=True
        )
        self._writer.start()

    def record(self, task: Task, previous: TaskStatus | None = None) -> None:
        """TaskManager listener: remember that ``task`` changed (cheap; written in batches)."""
        self._dirty[task.task_id] = task
        self._schedule_flush()

    def forget(self, task_id: str) -> None:
        """TaskStore eviction hook: the record goes, the id is kept to say "evicted"."""
        self._dirty.pop(task_id, None)
        self._forgotten.append(task_id)
        self._schedule_flush()

    def _schedule_flush(self) -> None:
        if self._flush_handle is None and self._loop is not None:
            self._flush_handle = self._loop.call_later(FLUSH_INTERVAL, self.flush)

    def flush(self) -> None:
        """Hand what changed since the last flush to the writer thread."""
        self._flush_handle = None
        rows = [_row(task) for task in self._dirty.values()]
        forgotten, self._dirty, self._forgotten = self._forgotten, {}, []
        if rows or forgotten:
            self._batches.put((rows, forgotten))

    async def close(self) -> None:
        """Write what is left and stop the writer (without blocking the loop)."""
        if self._flush_handle is not None:
            self._flush_handle.cancel()
        self.flush()
        self._batches.put(None)
        if self._writer is not None:
            await asyncio.to_thread(self._writer.join)

    def _write_forever(self) -> None:
        conn = self._connect()
        try:
            while True:
                batch = self._batches.get()
                batches = [batch]
                while batch is not None and not self._batches.empty():
                    batch = self._batches.get()
                    batches.append(batch)
                self._write([b for b in batches if b is not None], conn)
                if batch is None:
                    return
        finally:
            conn.close()

    def _write(self, batches: list[tuple[list[Row], list[str]]], conn: sqlite3.Connection) -> None:
        try:
            with conn:
                for rows, forgotten in batches:
                    conn.executemany(_UPSERT, [_row_values(row) for row in rows])
                    conn.executemany(_EVICT, [(task_id,) for task_id in forgotten])
                    self.writes += len(rows) + len(forgotten)
        except (sqlite3.Error, TypeError):
            # The service keeps running on its in-memory records; the file is behind.
            log.exception("state file %s: write failed", self.path)


def _row(task: Task) -> Row:
    # Taken on the loop: a new dict whose values are never mutated afterwards (records are
    # replaced, not edited), so the writer thread may serialise it later.
    record: dict[str, Any] | bytes | None = None
    if task.finished:
        # a finished record's JSON is made once and kept by the task: written as it is
        with contextlib.suppress(TypeError):  # (a result that is not JSON is not kept)
            record = task.record_json()
    if record is None:
        record = task.to_dict(with_result=False)
    return (
        task.task_id,
        task.seq,
        task.status.value,
        task.created_at,
        task.started_at,
        task.finished_at,
        record,
    )


def _row_values(row: Row) -> tuple[Any, ...]:
    record = row[6]
    blob = record if isinstance(record, bytes) else orjson.dumps(record, option=_JSON_OPTIONS)
    return (*row[:6], blob)


def _task_from_row(
    task_id: str,
    seq: int,
    status: str,
    created_at: float,
    started_at: float | None,
    finished_at: float | None,
    blob: bytes,
) -> Task:
    record = orjson.loads(blob)
    task = Task(
        type=record["type"],
        params=record.get("params") or {},
        priority=Priority.from_label(record["priority"]),
        timeout=record.get("timeout"),
        seq=seq,
    )
    task.task_id = task_id
    task.params = None
    task.created_at = created_at
    task.started_at = started_at
    task.finished_at = finished_at
    task.status = TaskStatus(status)
    task.progress = record.get("progress")
    task.result = record.get("result")
    task.error = record.get("error")
    task.compact()
    return task


def _interrupt(task: Task, now: float) -> None:
    was = task.status.value
    task.status = TaskStatus.FAILED
    task.finished_at = now
    task.error = {
        "type": Interrupted.__name__,
        "message": f"interrupted by restart: the task was {was} when the server stopped",
    }


def _trim_evicted(conn: sqlite3.Connection) -> None:
    """Keep only the newest EVICTED_IDS_KEPT ids of evicted tasks."""
    conn.execute(
        "DELETE FROM tasks WHERE status = ? AND rowid NOT IN "
        "(SELECT rowid FROM tasks WHERE status = ? ORDER BY rowid DESC LIMIT ?)",
        (EVICTED, EVICTED, EVICTED_IDS_KEPT),
    )
