"""Watching a process pool's workers from outside the pool, and letting a broken pool go.

``ProcessPoolExecutor`` on Python 3.11 may not notice the death of a worker it has just started:
``submit`` wakes the pool's thread before it spawns the process, so that thread can go back to
waiting without the new process's sentinel (bench/death_detection.py: 20 deaths of 20 missed).
The :class:`Watchdog` waits on every worker's sentinel itself, and is woken whenever the
executor sees that a submit spawned a process, so a death is noticed within milliseconds;
``WATCHDOG_INTERVAL`` bounds the one case it is not woken for (a process the pool spawns from
its own thread, to replace one it recycled).

Exit codes are never read here: with the forkserver, reading one from two threads at once
(ours and the pool's) can yield a false 255. A retiring worker says so itself instead.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import multiprocessing.connection
import os
import threading
import time
from collections.abc import Callable
from typing import Any

WATCHDOG_INTERVAL = 0.2  # seconds

Pool = concurrent.futures.ProcessPoolExecutor
Report = Callable[[int, list[int]], None]  # (generation, pids that exited), called on the loop


class Watchdog:
    """A thread waiting on the sentinels of ``watched``'s processes; exits go to ``report``."""

    def __init__(self, loop: asyncio.AbstractEventLoop, report: Report) -> None:
        self._loop = loop
        self._report = report
        # (pool, generation) as one value, replaced whole: the thread never pairs a new
        # generation number with the old pool's processes
        self.watched: tuple[Pool | None, int] = (None, 0)
        self._wakeup_in, self._wakeup_out = os.pipe()
        os.set_blocking(self._wakeup_out, False)  # a full pipe already means "wake up"
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="rpcsvc-watchdog", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        """Look at the pool's processes again now (e.g. a submit has just spawned one)."""
        with contextlib.suppress(OSError):
            os.write(self._wakeup_out, b"\0")

    async def stop(self) -> None:
        self._stopping = True
        self.wake()
        await asyncio.to_thread(self._thread.join, 5.0)
        os.close(self._wakeup_in)
        os.close(self._wakeup_out)

    def _run(self) -> None:
        reported: set[Any] = set()  # process objects whose exit was reported
        while not self._stopping:
            pool, generation = self.watched
            procs = dict(getattr(pool, "_processes", None) or {})
            reported &= set(procs.values())
            watched = {p.sentinel: pid for pid, p in procs.items() if p not in reported}
            try:
                ready = multiprocessing.connection.wait(
                    [self._wakeup_in, *watched], timeout=WATCHDOG_INTERVAL
                )
            except (OSError, ValueError):  # a sentinel closed under us: look again
                continue
            if self._wakeup_in in ready:
                with contextlib.suppress(OSError):
                    os.read(self._wakeup_in, 4096)
            exited = [watched[s] for s in ready if s in watched]
            if not exited:
                continue
            reported.update(procs[pid] for pid in exited)
            if not self._loop.is_closed():
                with contextlib.suppress(RuntimeError):
                    self._loop.call_soon_threadsafe(self._report, generation, exited)


def abandon(pool: Pool, procs: list[Any]) -> None:
    """Shut a pool down and kill its processes (their work is lost already: free the CPU).

    A process killed while writing a result leaves the pool's thread waiting forever for the
    rest of the message (the pipe's write end is also held here, so no end of file comes),
    and the interpreter would then hang at exit joining that thread. Closing our copy of the
    write end lets the read fail once the workers are dead, and the thread end.
    """
    results = getattr(pool, "_result_queue", None)
    pool.shutdown(wait=False, cancel_futures=True)
    for proc in procs:
        with contextlib.suppress(Exception):
            proc.kill()
    writer = getattr(results, "_writer", None)
    if writer is not None:
        with contextlib.suppress(OSError):
            writer.close()


def exited_sentinels(sentinels: list[int]) -> list[int]:
    """Those of ``sentinels`` whose process has exited (without reading any exit code)."""
    return list(multiprocessing.connection.wait(sentinels, timeout=0))  # type: ignore[arg-type]


def wait_exited(sentinels: list[int], timeout: float) -> None:
    """Block (in a thread) until every process has exited, or ``timeout`` seconds pass."""
    remaining = set(sentinels)
    end = time.monotonic() + timeout
    while remaining and time.monotonic() < end:
        ready = multiprocessing.connection.wait(list(remaining), timeout=end - time.monotonic())
        remaining.difference_update(ready)
