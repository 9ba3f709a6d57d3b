"""Bounded load test: N tasks from C concurrent clients against a real ``rpcsvc serve``.

Run from the repository root:

    python bench/load_test.py [--tasks 50000] [--clients 64] [--workers 2]
                              [--kill-every 2.0] [--state-file] [--compare-state-file]

Each client creates tasks one ``task.create`` at a time over loopback: 90 % one-text
``analyze_content`` (sentiment), 4 % ``debug.fail``, 3 % ``debug.echo`` (asyncio) and 3 %
cancelled right after creation. Then every task is waited for (``task.wait`` in batches) and
accounted for: counts by final state are printed, sentiment results are checked against VADER
run here, and any task lost or not finished makes the run fail (exit 1). ``--kill-every S``
SIGKILLs a random worker process every S seconds meanwhile. The run is bounded in count
(``--tasks``) and in time (``--deadline``) and stops the server itself.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import random
import re
import signal
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from workers import sentiment  # noqa: E402

WORDS = [
    "vote",
    "policy",
    "debate",
    "senator",
    "great",
    "awful",
    "love",
    "hate",
    "maybe",
    "tax",
    "health",
    "border",
]


@dataclass
class Run:
    """What one load run did and measured."""

    label: str
    tasks: dict[str, tuple[str, int]] = field(default_factory=dict)  # id -> (kind, index)
    create_latencies: list[float] = field(default_factory=list)
    requests: int = 0
    rpc_errors: collections.Counter[str] = field(default_factory=collections.Counter)
    finals: dict[str, dict[str, Any]] = field(default_factory=dict)
    kills: int = 0
    create_seconds: float = 0.0
    total_seconds: float = 0.0


def text_of(index: int) -> str:
    rng = random.Random(index)
    return " ".join(rng.choice(WORDS) for _ in range(8)) + rng.choice(["!", ".", " :)", " :("])


def kind_of(index: int) -> str:
    slot = index % 100
    return "analyze" if slot < 90 else "fail" if slot < 94 else "echo" if slot < 97 else "cancel"


def create_params(kind: str, index: int) -> dict[str, Any]:
    if kind == "fail":
        return {"type": "debug.fail", "params": {"message": f"bad input {index}"}}
    if kind == "echo":
        return {"type": "debug.echo", "params": {"value": index}}
    return {
        "type": "analyze_content",
        "params": {"texts": [text_of(index)], "analysis_types": ["sentiment"]},
    }


# --- the server ----------------------------------------------------------------------------


async def start_server(args: argparse.Namespace, state_file: Path | None, log: Path) -> Any:
    command = [sys.executable, "-m", "rpcsvc.cli", "serve", "--port", "0"]
    command += ["--workers", str(args.workers), "--debug-tasks", "true"]
    command += ["--log-level", args.log_level, "--shutdown-grace", "0"]
    if state_file is not None:
        command += ["--state-file", str(state_file)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("RPCSVC_")}
    with log.open("wb") as stderr:
        proc = await asyncio.create_subprocess_exec(
            *command, cwd=ROOT, env=env, stdout=asyncio.subprocess.DEVNULL, stderr=stderr
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # the "listening" line names the port it picked
        if match := re.search(r"listening on (http://[\d.]+:\d+)", log.read_text()):
            return proc, match.group(1)
        if proc.returncode is not None:
            break
        await asyncio.sleep(0.05)
    proc.kill()
    raise SystemExit(f"server did not start:\n{log.read_text()}")


def worker_pids(server_pid: int) -> list[int]:
    """The pool's worker processes: children of the server's forkserver."""
    parents: dict[int, int] = {}
    commands: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
                commands[int(entry.name)] = (entry / "cmdline").read_bytes().decode(errors="ignore")
            except OSError:
                continue
            parents[int(entry.name)] = int(stat[stat.rindex(")") + 2 :].split()[1])
    forkservers = [
        pid for pid, ppid in parents.items() if ppid == server_pid and "forkserver" in commands[pid]
    ]
    return [pid for pid, ppid in parents.items() if ppid in forkservers]


async def kill_workers_every(seconds: float, server_pid: int, run: Run) -> None:
    rng = random.Random(0)
    while True:
        await asyncio.sleep(seconds)
        pids = worker_pids(server_pid)
        if pids:
            try:
                os.kill(rng.choice(pids), signal.SIGKILL)
                run.kills += 1
            except ProcessLookupError:
                pass


# --- the clients ---------------------------------------------------------------------------


async def call(session: aiohttp.ClientSession, url: str, run: Run, payload: Any) -> Any:
    run.requests += 1
    async with session.post(url, data=orjson.dumps(payload)) as response:
        return orjson.loads(await response.read())


async def creator(session: aiohttp.ClientSession, url: str, run: Run, indexes: Any) -> None:
    for index in indexes:
        kind = kind_of(index)
        request = {"jsonrpc": "2.0", "method": "task.create", "id": index}
        request["params"] = create_params(kind, index)
        started = time.perf_counter()
        reply = await call(session, url, run, request)
        run.create_latencies.append(time.perf_counter() - started)
        if "error" in reply:
            run.rpc_errors[f"task.create: {reply['error']['message']}"] += 1
            continue
        task_id = reply["result"]["task_id"]
        run.tasks[task_id] = (kind, index)
        if kind == "cancel":
            cancel = {"jsonrpc": "2.0", "method": "task.cancel", "id": 0}
            await call(session, url, run, {**cancel, "params": {"task_id": task_id}})


async def waiter(session: aiohttp.ClientSession, url: str, run: Run, ids: list[str]) -> None:
    todo = list(ids)
    while todo and run.rpc_errors.total() < 1000:  # stop if the server keeps refusing
        batch = [
            {
                "jsonrpc": "2.0",
                "method": "task.wait",
                "params": {"task_id": i, "timeout": 30},
                "id": n,
            }
            for n, i in enumerate(todo[:200])
        ]
        for reply in await call(session, url, run, batch):
            if "error" in reply:
                run.rpc_errors[f"task.wait: {reply['error']['message']}"] += 1
            elif reply["result"]["status"] in ("completed", "failed", "cancelled"):
                run.finals[reply["result"]["task_id"]] = reply["result"]
        todo = [i for i in todo if i not in run.finals]


async def load(args: argparse.Namespace, state_file: Path | None, label: str) -> Run:
    run = Run(label)
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(args.server_log or Path(tmp) / "server.log")
        proc, base = await start_server(args, state_file, log)
        url = base + "/rpc"
        chaos = None
        try:
            connector = aiohttp.TCPConnector(limit=args.clients)
            timeout = aiohttp.ClientTimeout(total=120)
            async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
                if args.kill_every:
                    chaos = asyncio.create_task(kill_workers_every(args.kill_every, proc.pid, run))
                started = time.perf_counter()
                indexes = iter(range(args.tasks))  # shared: each client takes the next index
                await asyncio.wait_for(
                    asyncio.gather(
                        *(creator(session, url, run, indexes) for _ in range(args.clients))
                    ),
                    args.deadline,
                )
                run.create_seconds = time.perf_counter() - started
                ids = list(run.tasks)
                shares = [ids[i :: args.clients] for i in range(args.clients)]
                remaining = max(1.0, args.deadline - run.create_seconds)
                try:
                    await asyncio.wait_for(
                        asyncio.gather(*(waiter(session, url, run, s) for s in shares)),
                        remaining,
                    )
                except TimeoutError:
                    print(f"[{label}] deadline reached while waiting for tasks", file=sys.stderr)
                run.total_seconds = time.perf_counter() - started
                if chaos is not None:
                    chaos.cancel()
        finally:
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    await asyncio.wait_for(proc.wait(), 30)
                except TimeoutError:
                    proc.kill()
                    await proc.wait()
    return run


# --- checking and reporting ----------------------------------------------------------------


def account(run: Run, tasks: int) -> tuple[collections.Counter[str], list[str]]:
    """Final states by kind, and every problem found (a lost task is one)."""
    states: collections.Counter[str] = collections.Counter()
    problems: list[str] = []
    created = len(run.tasks)
    if created != tasks:
        problems.append(f"{tasks - created} task.create calls failed")
    for task_id, (kind, index) in run.tasks.items():
        record = run.finals.get(task_id)
        if record is None:
            problems.append(f"task {task_id} ({kind}) never reached a final state")
            continue
        error = (record.get("error") or {}).get("type")
        states[f"{record['status']}{f' ({error})' if error else ''}"] += 1
        if kind == "analyze" and record["status"] == "completed":
            row = record["result"]["posts"][0]
            expected = {"id": 0, **sentiment.score(text_of(index))}
            if row != expected:
                problems.append(f"task {task_id}: wrong result {row} != {expected}")
        elif kind == "fail" and record["status"] == "failed" and error != "ValueError":
            problems.append(f"task {task_id}: failed with {error}, expected ValueError")
        elif kind in ("analyze", "echo") and record["status"] == "cancelled":
            problems.append(f"task {task_id} ({kind}) cancelled though nobody cancelled it")
    return states, problems


def report(run: Run, args: argparse.Namespace) -> bool:
    states, problems = account(run, args.tasks)
    latencies = sorted(run.create_latencies)
    p50 = statistics.median(latencies) * 1000 if latencies else float("nan")
    p99 = latencies[int(len(latencies) * 0.99) - 1] * 1000 if latencies else float("nan")
    print(f"\n== {run.label}")
    print(
        f"task.create: {len(latencies):,} calls in {run.create_seconds:.1f} s = "
        f"{len(latencies) / run.create_seconds:,.0f} creates/s "
        f"(p50 {p50:.2f} ms, p99 {p99:.2f} ms, {args.clients} clients)"
    )
    print(
        f"all requests (create, cancel, wait batches): {run.requests:,} in "
        f"{run.total_seconds:.1f} s = {run.requests / run.total_seconds:,.0f} requests/s; "
        f"every task final after {run.total_seconds:.1f} s "
        f"({len(run.finals) / run.total_seconds:,.0f} tasks/s end to end)"
    )
    if args.kill_every:
        print(f"worker processes SIGKILLed meanwhile: {run.kills}")
    print(f"accounted for: {len(run.finals):,} of {args.tasks:,} tasks")
    for state, count in sorted(states.items()):
        print(f"  {state:28s} {count:7,}")
    for message, count in run.rpc_errors.most_common(5):
        print(f"  RPC error x{count}: {message}")
    for problem in problems[:10]:
        print(f"  PROBLEM: {problem}")
    if len(problems) > 10:
        print(f"  ... and {len(problems) - 10} more problems")
    return not problems


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=50_000)
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--kill-every", type=float, default=0.0, help="seconds; 0: no kills")
    parser.add_argument("--state-file", action="store_true", help="run with --state-file")
    parser.add_argument(
        "--compare-state-file", action="store_true", help="run without, then with a state file"
    )
    parser.add_argument("--log-level", default="INFO")
    parser.add_argument("--server-log", help="keep the server's log in this file")
    parser.add_argument("--deadline", type=float, default=600.0, help="seconds per run")
    args = parser.parse_args()
    print(
        f"{args.tasks:,} tasks, {args.clients} concurrent clients, {args.workers} workers, "
        f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs"
    )
    plans = [(False, "no state file"), (True, "with --state-file")]
    if not args.compare_state_file:
        plans = [plans[1] if args.state_file else plans[0]]
    runs = []
    for with_state, label in plans:
        with tempfile.TemporaryDirectory() as tmp:
            state_file = Path(tmp) / "state.sqlite" if with_state else None
            run = await load(args, state_file, label)
            runs.append((run, report(run, args)))
    if len(runs) == 2:
        (plain, _), (stored, _) = runs
        ratio = (len(stored.create_latencies) / stored.create_seconds) / (
            len(plain.create_latencies) / plain.create_seconds
        )
        print(f"\ncreates/s with a state file / without: {ratio:.2f}x")
    return 0 if all(ok for _, ok in runs) else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
