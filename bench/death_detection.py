"""How fast is a dead worker process noticed? rpcsvc's executor beside a bare ProcessPoolExecutor.

Run from the repository root:

    python bench/death_detection.py [--trials 20]

Two cases, each SIGKILLing the worker running a 30 s job and timing until its future fails:

- "running": a worker that has been in the pool for a while;
- "just started": a worker the pool spawned for this very job (``submit`` on Python 3.11 wakes
  the pool's thread before it spawns the process, so that thread may wait without it and miss
  its death until something else wakes it; rpcsvc's watchdog waits on every sentinel itself).

A bare pool that does not notice within ``--cap`` seconds counts as "missed".
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import logging
import multiprocessing
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rpcsvc.errors import WorkerDied
from rpcsvc.executor import ProcessExecutor
from rpcsvc.registry import Call
from workers import diagnostics


def write_pid_then_sleep(path: str, seconds: float) -> None:
    Path(path).write_text(str(os.getpid()))
    time.sleep(seconds)


async def _pid_from(path: Path) -> int:
    while not path.exists() or not path.read_text():
        await asyncio.sleep(0.001)
    return int(path.read_text())


async def bare_pool(just_started: bool, cap: float) -> float | None:
    """Seconds until a bare pool fails the killed worker's future (None: missed within cap)."""
    ctx = multiprocessing.get_context("forkserver")
    pool = concurrent.futures.ProcessPoolExecutor(max_workers=2, mp_context=ctx)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            if just_started:
                # one long job first: the pool's thread is then running (and waiting) when the
                # next submit spawns the second process
                first = Path(tmp) / "first"
                pool.submit(write_pid_then_sleep, str(first), 30)
                await _pid_from(first)
            else:  # both processes started and settled before the job
                await asyncio.wrap_future(pool.submit(time.sleep, 0.05))
                await asyncio.wrap_future(pool.submit(time.sleep, 0.05))
            path = Path(tmp) / "pid"
            future = asyncio.wrap_future(pool.submit(write_pid_then_sleep, str(path), 30))
            pid = await _pid_from(path)
            killed = time.perf_counter()
            os.kill(pid, signal.SIGKILL)
            try:
                await asyncio.wait_for(future, cap)
            except concurrent.futures.process.BrokenProcessPool:
                return time.perf_counter() - killed
            except TimeoutError:
                return None
            return None
    finally:
        for proc in list((pool._processes or {}).values()):  # type: ignore[attr-defined]
            proc.kill()
        pool.shutdown(wait=False, cancel_futures=True)


async def rpcsvc_executor(executor: ProcessExecutor, just_started: bool) -> float:
    """Seconds until rpcsvc's executor fails the killed worker's job with WorkerDied."""
    first = None
    if just_started:
        # a fresh pool, as after a rebuild: its processes start with the next jobs
        warm = executor.submit([Call(diagnostics.sleep, (0,))])
        await warm.started
        await warm.future
        restarts = executor.restarts
        os.kill(warm.pid, signal.SIGKILL)  # type: ignore[arg-type]
        while executor.restarts == restarts:  # wait for the rebuild (no process started yet)
            await asyncio.sleep(0.005)
        first = executor.submit([Call(diagnostics.sleep, (30,))])
        await first.started
    job = executor.submit([Call(diagnostics.sleep, (30,))])
    pid = await job.started
    killed = time.perf_counter()
    os.kill(pid, signal.SIGKILL)
    try:
        await job.future
    except WorkerDied:
        return time.perf_counter() - killed
    finally:
        if first is not None:  # lost with the pool, as a bystander
            await asyncio.gather(first.future, return_exceptions=True)
    raise AssertionError("the job survived the kill")


def _summary(delays: list[float | None]) -> str:
    seen = sorted(d for d in delays if d is not None)
    missed = len(delays) - len(seen)
    if not seen:
        return f"missed {missed}/{len(delays)}"
    text = f"median {statistics.median(seen) * 1000:7.1f} ms   max {seen[-1] * 1000:7.1f} ms"
    return text + (f"   missed {missed}/{len(delays)}" if missed else "")


async def main() -> None:
    logging.getLogger("rpcsvc").setLevel(logging.ERROR)  # one warning per rebuild otherwise
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--cap", type=float, default=3.0, help="seconds before 'missed'")
    args = parser.parse_args()

    executor = ProcessExecutor(workers=2)
    await executor.start()
    try:
        results: dict[tuple[str, str], list[float | None]] = {}
        for case, just_started in (("running", False), ("just started", True)):
            ours: list[float | None] = [
                await rpcsvc_executor(executor, just_started) for _ in range(args.trials)
            ]
            bare = [await bare_pool(just_started, args.cap) for _ in range(args.trials)]
            results[(case, "rpcsvc executor")] = ours
            results[(case, "bare ProcessPoolExecutor")] = bare
    finally:
        await executor.close()
    print(f"Death of a worker process: SIGKILL -> its job's future fails ({args.trials} trials)")
    print(f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs\n")
    for (case, engine), delays in results.items():
        print(f"{case:13s} {engine:25s} {_summary(delays)}")


if __name__ == "__main__":
    asyncio.run(main())
