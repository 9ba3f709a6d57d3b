"""Diagnostic task functions (``debug.*`` types, only with ``debug_tasks`` on).

They let integration tests and operators exercise the service's machinery (priorities,
timeouts, failures, dying workers) with real worker processes and no analysis cost.
"""

from __future__ import annotations

import os
import resource
import time


def sleep(seconds: float) -> dict[str, float | int]:
    """Hold a worker for ``seconds`` (a stand-in for long or hung CPU work)."""
    time.sleep(seconds)
    return {"slept": seconds, "pid": os.getpid()}


def fail(message: str) -> None:
    """Raise, as buggy task code would."""
    raise ValueError(message)


def crash(exit_code: int) -> None:
    """Kill the worker process itself, as a segfault or the OOM killer would.

    ``exit_code`` < 0 sends signal ``-exit_code`` to itself (no core file is written).
    """
    if exit_code < 0:
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        os.kill(os.getpid(), -exit_code)
    os._exit(exit_code)


def pid() -> int:
    return os.getpid()
