"""Analysis through the server against the same library calls in one process, side by side.

Run from the repository root:

    python bench/bench_analysis.py [--posts 200000] [--workers 2]

1. ``analyze_content`` of N posts (Reddit comment bodies and submission titles of shared/data,
   cycled, with their times): the per-post work alone (sentiment + entities, detail summary)
   and the whole task (all four types, every row returned); directly, the same
   ``workers.content`` calls run one after the other in this process.
2. ``analyze_relationships`` of the 10,355 Reddit comments.
3. The server's peak resident memory (VmHWM of its process, workers not included).

"server" is the task's own time (started_at -> finished_at in its record); "end to end" adds
sending the request and reading the result over loopback. The server runs in a subprocess
(``rpcsvc serve``), so nothing of this script's memory is counted in its peak. CPU seconds of
the workers and of the server process (from /proc) are printed too: on a machine shared with
other work, "cores" (workers' CPU seconds / task seconds) below the worker count says the
wall-clock ratio was held back by contention, not by the service.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import orjson

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("RPCSVC_SHARED", ROOT.parent / "shared"))
sys.path.insert(0, str(ROOT))

from workers import content, relationships  # noqa: E402

PER_POST = ("sentiment", "entities")


def load(n_posts: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(N posts cycled from the Reddit files, the 10,355 comments as they are)."""

    def read(name: str) -> list[dict[str, Any]]:
        with gzip.open(SHARED / "data" / name, "rt", encoding="utf-8") as f:
            return [json.loads(line) for line in f]

    comments = read("reddit_comment_2022-11-08.json.gz")
    submissions = read("reddit_submission_2022-11-08.json.gz")
    base = [(c["body"], c["created_utc"]) for c in comments]
    base += [(s["title"], s["created_utc"]) for s in submissions]
    posts = [
        {"id": i, "text": base[i % len(base)][0], "created_at": base[i % len(base)][1]}
        for i in range(n_posts)
    ]
    return posts, comments


# --- directly, in this process ---------------------------------------------------------------


def _timed(call: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    value = call()
    return time.perf_counter() - start, value


def _cpu_timed(call: Callable[[], Any]) -> tuple[float, float, Any]:
    """(wall seconds, CPU seconds of this process, value)."""
    cpu = time.process_time()
    wall, value = _timed(call)
    return wall, time.process_time() - cpu, value


def direct(posts: list[dict[str, Any]], comments: list[dict[str, Any]]) -> dict[str, float]:
    content.init()
    items = [(p["id"], p["text"], p["created_at"]) for p in posts]
    texts = [text for _, text, _ in items]
    per_post = content.ContentOptions(analysis_types=PER_POST, with_rows=False)
    full = content.ContentOptions()
    seconds: dict[str, float] = {}
    wall, cpu, _ = _cpu_timed(lambda: content.analyze_chunk(items, per_post))
    seconds["per_post"], seconds["per_post_cpu"] = wall, cpu
    chunk_s, chunk_cpu, chunk = _cpu_timed(lambda: content.analyze_chunk(items, full))
    whole_s, whole_cpu, whole = _cpu_timed(lambda: content.analyze_whole_set(texts, full))
    merge_s, merge_cpu, _ = _cpu_timed(lambda: content.merge_chunks(full, [chunk, whole]))
    seconds["full_per_post"], seconds["whole_set"] = chunk_s, whole_s
    seconds["full"] = chunk_s + whole_s + merge_s
    seconds["full_cpu"] = chunk_cpu + whole_cpu + merge_cpu
    options = relationships.GraphOptions()
    wall, cpu, _ = _cpu_timed(lambda: relationships.analyze_with(comments, options))
    seconds["relationships"], seconds["relationships_cpu"] = wall, cpu
    return seconds


# --- through the server ----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc status")


def cpu_seconds(root: int) -> tuple[float, float]:
    """CPU seconds used so far by the server process and by its descendants (the workers and
    the forkserver), from /proc."""
    parent: dict[int, int] = {}
    used: dict[int, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            parent[int(entry.name)] = int(fields[1])
            used[int(entry.name)] = (int(fields[11]) + int(fields[12])) / tick
    descendants: set[int] = set()
    frontier = {root}
    while frontier:
        frontier = {pid for pid, ppid in parent.items() if ppid in frontier} - descendants
        descendants |= frontier
    return used.get(root, 0.0), sum(used[pid] for pid in descendants)


async def rpc(session: aiohttp.ClientSession, url: str, method: str, body: bytes) -> Any:
    async with session.post(url, data=body, headers={"Content-Type": "application/json"}) as r:
        answer = orjson.loads(await r.read())
    if "error" in answer:
        raise RuntimeError(f"{method}: {answer['error']}")
    return answer["result"]


async def run_task(
    session: aiohttp.ClientSession, url: str, task_type: str, params: dict[str, Any]
) -> tuple[float, float, dict[str, Any]]:
    """(end-to-end seconds, the task's own seconds, its record)."""
    create = {"jsonrpc": "2.0", "id": 1, "method": "task.create"}
    body = orjson.dumps({**create, "params": {"type": task_type, "params": params}})
    start = time.perf_counter()
    task = await rpc(session, url, "task.create", body)
    while task["status"] not in ("completed", "failed", "cancelled"):
        wait = {"jsonrpc": "2.0", "id": 2, "method": "task.wait"}
        wait_params = {"task_id": task["task_id"], "timeout": 300}
        task = await rpc(session, url, "task.wait", orjson.dumps({**wait, "params": wait_params}))
    end_to_end = time.perf_counter() - start
    if task["status"] != "completed":
        raise RuntimeError(f"{task_type}: {task['status']}: {task['error']}")
    started, finished = (datetime.fromisoformat(task[k]) for k in ("started_at", "finished_at"))
    return end_to_end, (finished - started).total_seconds(), task


async def through_server(
    posts: list[dict[str, Any]], comments: list[dict[str, Any]], workers: int
) -> tuple[dict[str, tuple[float, float, float, float]], float, dict[str, Any]]:
    port = free_port()
    cmd = [sys.executable, "-m", "rpcsvc.cli", "serve", "--port", str(port),
           "--workers", str(workers), "--log-level", "warning"]  # fmt: skip
    server = subprocess.Popen(cmd, cwd=ROOT)
    url = f"http://127.0.0.1:{port}/rpc"
    timeout = aiohttp.ClientTimeout(total=None)
    try:
        async with aiohttp.ClientSession(timeout=timeout) as session:
            await _wait_up(session, port)
            # name -> (end to end s, task's own s, server CPU s, workers' CPU s)
            times: dict[str, tuple[float, float, float, float]] = {}
            per_post = {"posts": posts, "analysis_types": list(PER_POST), "detail": "summary"}
            runs = [
                ("per_post", "analyze_content", per_post),
                ("full", "analyze_content", {"posts": posts}),
                ("relationships", "analyze_relationships", {"posts": comments}),
            ]
            for name, task_type, params in runs:
                server_cpu, workers_cpu = cpu_seconds(server.pid)
                e2e, own, task = await run_task(session, url, task_type, params)
                server_after, workers_after = cpu_seconds(server.pid)
                times[name] = (e2e, own, server_after - server_cpu, workers_after - workers_cpu)
                if name == "full":
                    result = task["result"]
            peak = peak_rss_mib(server.pid)
    finally:
        server.terminate()
        server.wait(60)
    return times, peak, result


async def _wait_up(session: aiohttp.ClientSession, port: int) -> None:
    for _ in range(600):
        try:
            async with session.get(f"http://127.0.0.1:{port}/healthz") as response:
                if response.status == 200:
                    return
        except aiohttp.ClientConnectionError:
            pass
        await asyncio.sleep(0.1)
    raise RuntimeError("the server did not come up")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=200_000)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    posts, comments = load(args.posts)
    n, m = len(posts), len(comments)
    print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    alone = direct(posts, comments)
    served, peak, result = asyncio.run(through_server(posts, comments, args.workers))
    print(f"load average after: {os.getloadavg()[0]:.2f}")

    def row(name: str, items: int, one: float, key: str) -> None:
        e2e, own, _, _ = served[key]
        print(
            f"{name:44} {items / one:>10,.0f} {items / own:>10,.0f} {items / e2e:>11,.0f}"
            f" {one / own:>7.2f}x {one / e2e:>7.2f}x"
        )

    print(f"\nposts/s ({args.workers} workers)" + " " * 21 + "    direct     server  end to end"
          "  server/direct  e2e/direct")  # fmt: skip
    row(f"analyze_content per-post ({n:,}, sent.+ent.)", n, alone["per_post"], "per_post")
    row(f"analyze_content all types ({n:,}, rows)", n, alone["full"], "full")
    row(f"analyze_relationships ({m:,} comments)", m, alone["relationships"], "relationships")
    print(
        f"\ndirect breakdown, all types: per-post {alone['full_per_post']:.1f} s, whole-set "
        f"(topics + keywords) {alone['whole_set']:.1f} s"
    )
    print(
        "\nCPU seconds (contention shows as workers' CPU / task time < workers):"
        f"\n{'':44} {'direct':>8} {'workers':>8} {'server':>8} {'task s':>8} {'cores':>6}"
    )
    for name, key in (
        ("per-post", "per_post"),
        ("all types", "full"),
        ("relationships", "relationships"),
    ):
        _, own, server_cpu, workers_cpu = served[key]
        print(
            f"{name:44} {alone[key + '_cpu']:>8.1f} {workers_cpu:>8.1f} {server_cpu:>8.1f}"
            f" {own:>8.1f} {workers_cpu / own:>6.2f}"
        )
    print(f"server peak RSS (VmHWM, server process only): {peak:,.0f} MiB (limit 2,048 MiB)")
    print(
        f"result of the all-types task: {len(result['posts']):,} rows, "
        f"{len(result['topics'])} topics, {len(orjson.dumps(result)) / 2**20:,.0f} MiB as JSON"
    )


if __name__ == "__main__":
    main()
