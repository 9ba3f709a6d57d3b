"""What every pool process runs: the initializer and the job entry point.

A job is a list of calls merged by the TaskManager (many tiny tasks share one round trip to the
pool); each call's outcome is reported separately, so one failing call fails only its own task.

Each process tells the server two things on an events pipe: which job it is starting (so that
the server can stop that job by killing this process) and that it is about to retire (its
``max_tasks_per_child``-th call), so that its clean exit is not mistaken for a crash. Each
message is one ``os.write`` of 16 bytes: writes of up to PIPE_BUF bytes to a pipe are atomic,
so no lock is shared between processes, and a process killed at any instant cannot leave the
pipe half-written or a lock held.
"""

from __future__ import annotations

import contextlib
import os
import signal
import struct
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

# ("ok", value) or ("error", exception type name, message, formatted traceback)
Outcome = tuple[Any, ...]

EVENT = struct.Struct("<qq")  # (job id, pid), or (RETIRING | TERMINATED, pid)
RETIRING = 0  # this process exits cleanly after its current call (max_tasks_per_child)
TERMINATED = -1  # this process got SIGTERM (the pool stops every worker when one dies)

_events: Any = None  # the write end of the events pipe (a multiprocessing Connection)
_max_calls: int | None = None
_calls = 0


def init_worker(events: Any, lifeline: Any = None, max_calls: int | None = None) -> None:
    """Pool initializer: load heavy state once per process and keep the events pipe."""
    global _events, _max_calls, _calls
    _events, _max_calls, _calls = events, max_calls, 0
    # Ctrl-C in a terminal goes to the whole process group; shutdown is the server's decision.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _on_sigterm)
    if lifeline is not None:
        threading.Thread(target=_exit_with_server, args=(lifeline,), daemon=True).start()
    from . import content

    content.init()  # the per-post analysers' lexicon and gazetteer


def _exit_with_server(lifeline: Any) -> None:
    """Thread: exit as soon as the server is gone, even if it was killed with SIGKILL.

    ``lifeline`` is the read end of a pipe whose write end only the server holds: its death
    closes it. Without this, a worker would wait forever on the pool's queue (whose write end
    every worker also holds) and outlive the server.
    """
    with contextlib.suppress(EOFError, OSError):
        lifeline.recv_bytes()
    os._exit(1)


def _on_sigterm(signum: int, frame: Any) -> None:
    # When a worker dies, the pool SIGTERMs all the others: saying so first lets the server
    # tell those bystanders from the process that died on its own.
    _announce(TERMINATED)
    os._exit(128 + signum)


def _announce(job_id: int) -> None:
    if _events is not None:
        os.write(_events.fileno(), EVENT.pack(job_id, os.getpid()))


def _count_call() -> None:
    # The pool retires a process after its max_tasks_per_child-th call; every call it runs is
    # one of the two entry points below, so counting here matches the pool's own count.
    global _calls
    _calls += 1
    if _max_calls is not None and _calls >= _max_calls:
        _announce(RETIRING)


def warm_up() -> int:
    """A job that makes the pool start a process; returns the process id."""
    time.sleep(0.05)
    _count_call()
    return os.getpid()


def run_job(job_id: int, calls: list[tuple[Callable[..., Any], tuple[Any, ...]]]) -> list[Outcome]:
    """Run the calls in order; announce (job id, pid) first so the server can stop this job."""
    _announce(job_id)
    outcomes: list[Outcome] = []
    try:
        for fn, args in calls:
            try:
                outcomes.append(("ok", fn(*args)))
            except Exception as exc:  # each call's failure belongs to its own task only
                outcomes.append(("error", type(exc).__name__, str(exc), traceback.format_exc()))
    finally:
        _count_call()
    return outcomes


def chunk_then_finish(
    chunk_fn: Callable[..., Any],
    chunk_args: tuple[Any, ...],
    finish_fn: Callable[..., Any],
    finish_args: tuple[Any, ...],
) -> Any:
    """A one-chunk task in a single pool call: the chunk, then its finish step."""
    return finish_fn(*finish_args, [chunk_fn(*chunk_args)])
