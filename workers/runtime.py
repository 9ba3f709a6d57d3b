"""What every pool process runs: the initializer and the job entry point.

A job is a list of calls merged by the TaskManager (many tiny tasks share one round trip to the
pool); each call's outcome is reported separately, so one failing call fails only its own task.
"""

from __future__ import annotations

import os
import signal
import time
import traceback
from collections.abc import Callable
from multiprocessing.queues import SimpleQueue
from typing import Any

# ("ok", value) or ("error", exception type name, message, formatted traceback)
Outcome = tuple[Any, ...]

_events: SimpleQueue[tuple[int, int]] | None = None


def init_worker(events: SimpleQueue[tuple[int, int]] | None) -> None:
    """Pool initializer: load heavy state once per process and keep the job-start channel."""
    global _events
    _events = events
    # Ctrl-C in a terminal goes to the whole process group; shutdown is the server's decision.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    from . import sentiment

    sentiment.get_analyzer()


def warm_up() -> int:
    """A job that makes the pool start a process; returns the process id."""
    time.sleep(0.05)
    return os.getpid()


def run_job(job_id: int, calls: list[tuple[Callable[..., Any], tuple[Any, ...]]]) -> list[Outcome]:
    """Run the calls in order; announce (job id, pid) first so the server can stop this job."""
    if _events is not None:
        _events.put((job_id, os.getpid()))
    outcomes: list[Outcome] = []
    for fn, args in calls:
        try:
            outcomes.append(("ok", fn(*args)))
        except Exception as exc:  # each call's failure belongs to its own task only
            outcomes.append(("error", type(exc).__name__, str(exc), traceback.format_exc()))
    return outcomes


def chunk_then_finish(
    chunk_fn: Callable[..., Any],
    chunk_args: tuple[Any, ...],
    finish_fn: Callable[..., Any],
    finish_args: tuple[Any, ...],
) -> Any:
    """A one-chunk task in a single pool call: the chunk, then its finish step."""
    return finish_fn(*finish_args, [chunk_fn(*chunk_args)])
