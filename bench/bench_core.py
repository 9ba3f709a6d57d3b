"""Core benchmark: JSON-RPC serving, tiny-task throughput, round trip, bulk sentiment.

Run from the repository root, in one go (needs `wrk` for the HTTP part: apt-get install wrk):

    python bench/bench_core.py [--workers 2] [--seconds 5]

Every figure is printed beside its baseline measured in the same run on the same machine.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import aiohttp
import orjson

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("RPCSVC_SHARED", ROOT.parent / "shared"))


# --- servers under test (each in its own process) ------------------------------------------


def serve_bare(port: int) -> None:
    """The floor: a plain aiohttp handler that parses the JSON-RPC body and answers it."""
    from aiohttp import web

    record = {"task_id": "x", "status": "completed"}

    async def handler(request: web.Request) -> web.Response:
        message = orjson.loads(await request.read())
        body = orjson.dumps({"jsonrpc": "2.0", "result": record, "id": message["id"]})
        return web.Response(body=body, content_type="application/json")

    app = web.Application()
    app.router.add_post("/rpc", handler)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


def serve_stock(port: int) -> None:
    """Stock aiohttp-jsonrpc answering a trivial method."""
    from aiohttp import web
    from aiohttp_jsonrpc import handler

    class View(handler.JSONRPCView):
        def rpc_status(self, task_id: str) -> dict[str, str]:
            return {"task_id": task_id, "status": "completed"}

    app = web.Application()
    app.router.add_route("*", "/rpc", View)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def wait_until_up(port: int, path: str = "/rpc") -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(600):
            try:
                async with session.get(f"http://127.0.0.1:{port}/healthz") as response:
                    if path != "/rpc" or response.status in (200, 404, 405):
                        return
            except aiohttp.ClientConnectionError:
                await asyncio.sleep(0.05)
    raise RuntimeError(f"server on port {port} did not come up")


def start(kind: str, port: int, workers: int) -> subprocess.Popen[bytes]:
    if kind == "rpcsvc":
        cmd = [
            sys.executable,
            "-m",
            "rpcsvc.cli",
            "serve",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--log-level",
            "warning",
        ]
    else:
        cmd = [sys.executable, __file__, f"--serve-{kind}", str(port)]
    return subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def wrk(port: int, body: bytes, seconds: int) -> dict[str, float]:
    script = Path(tempfile.mkdtemp()) / "post.lua"
    script.write_text(
        'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
        f"wrk.body = [[{body.decode()}]]\n"
    )
    out = subprocess.run(
        [
            "wrk",
            "-t1",
            "-c64",
            f"-d{seconds}s",
            "--latency",
            "-s",
            str(script),
            f"http://127.0.0.1:{port}/rpc",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non2xx:
        raise RuntimeError(f"errors from the server:\n{out}")

    def pct(label: str) -> float:
        value, unit = re.search(rf"\s{label}%\s+([\d.]+)(us|ms|s)", out).groups()  # type: ignore[union-attr]
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    return {"rps": rps, "p50": pct("50"), "p99": pct("99")}


# --- the four measurements -----------------------------------------------------------------


async def bench_http(workers: int, seconds: int) -> None:
    print(f"\n1. task.status over loopback, 64 concurrent connections (wrk, {seconds} s each)")
    results = {}
    for kind in ("bare", "stock", "rpcsvc"):
        port = free_port()
        proc = start(kind, port, workers)
        try:
            await wait_until_up(port)
            if kind == "rpcsvc":
                async with aiohttp.ClientSession() as s:
                    create = {
                        "jsonrpc": "2.0",
                        "id": 1,
                        "method": "task.create",
                        "params": {"type": "analyze_content", "params": {"texts": ["ok"]}},
                    }
                    async with s.post(f"http://127.0.0.1:{port}/rpc", json=create) as r:
                        task_id = (await r.json())["result"]["task_id"]
                body = orjson.dumps(
                    {
                        "jsonrpc": "2.0",
                        "id": 1,
                        "method": "task.status",
                        "params": {"task_id": task_id},
                    }
                )
            else:
                body = orjson.dumps(
                    {"jsonrpc": "2.0", "id": 1, "method": "status", "params": {"task_id": "x"}}
                )
            results[kind] = wrk(port, body, seconds)
        finally:
            proc.terminate()
            proc.wait()
    print(f"   {'server':<38}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}")
    names = {
        "bare": "bare aiohttp handler (orjson)",
        "stock": "stock aiohttp-jsonrpc (trivial)",
        "rpcsvc": "rpcsvc task.status",
    }
    for kind, r in results.items():
        print(f"   {names[kind]:<38}{r['rps']:>10.0f}{r['p50']:>10.2f}{r['p99']:>10.2f}")
    served = results["rpcsvc"]["rps"]
    print(
        f"   rpcsvc / stock aiohttp-jsonrpc = {served / results['stock']['rps']:.2f}x"
        f"   (target >= 1.2x); rpcsvc / bare = {served / results['bare']['rps']:.2f}x"
    )


def _vader_one(text: str) -> dict[str, float]:
    from workers import sentiment

    return sentiment.score(text)  # type: ignore[return-value]


def _init_vader() -> None:
    from workers import sentiment

    sentiment.get_analyzer()


async def bench_tiny_tasks(
    workers: int, texts: list[str], n: int = 10_000, batch: int = 500
) -> None:
    print(f"\n2. {n:,} tiny CPU tasks (one-post analyze_content), {workers} workers")
    # Baseline: raw run_in_executor of the same VADER call, one pool call per task.
    loop = asyncio.get_running_loop()
    with ProcessPoolExecutor(workers, initializer=_init_vader) as pool:
        await asyncio.gather(
            *(loop.run_in_executor(pool, _vader_one, "warm") for _ in range(workers * 4))
        )
        t0 = time.perf_counter()
        await asyncio.gather(
            *(loop.run_in_executor(pool, _vader_one, texts[i % len(texts)]) for i in range(n))
        )
        raw = n / (time.perf_counter() - t0)
    port = free_port()
    proc = start("rpcsvc", port, workers)
    try:
        await wait_until_up(port)
        url = f"http://127.0.0.1:{port}/rpc"
        async with aiohttp.ClientSession() as session:

            async def post(payload: object) -> object:
                async with session.post(
                    url, data=orjson.dumps(payload), headers={"Content-Type": "application/json"}
                ) as r:
                    return orjson.loads(await r.read())

            # A batch client: each batch of creates is followed by one batch of waits for the
            # same tasks, with a few batches in flight at once (as for the raw pool, where all
            # 10,000 calls are in flight).
            in_flight = asyncio.Semaphore(4)

            async def one_batch(first: int) -> None:
                numbers = range(first, min(n, first + batch))
                async with in_flight:
                    created = await post(
                        [
                            {
                                "jsonrpc": "2.0",
                                "id": i,
                                "method": "task.create",
                                "params": {
                                    "type": "analyze_content",
                                    "params": {
                                        "texts": [texts[i % len(texts)]],
                                        "analysis_types": ["sentiment"],
                                    },
                                },
                            }
                            for i in numbers
                        ]
                    )
                    ids = [r["result"]["task_id"] for r in created]  # type: ignore[attr-defined]
                    answers = await post(
                        [
                            {
                                "jsonrpc": "2.0",
                                "id": i,
                                "method": "task.wait",
                                "params": {"task_id": task_id, "timeout": 300},
                            }
                            for i, task_id in enumerate(ids)
                        ]
                    )
                assert all(a["result"]["status"] == "completed" for a in answers)  # type: ignore[attr-defined]

            t0 = time.perf_counter()
            await asyncio.gather(*(one_batch(first) for first in range(0, n, batch)))
            served = n / (time.perf_counter() - t0)

            print(f"   raw run_in_executor, ProcessPoolExecutor({workers}): {raw:>9,.0f} tasks/s")
            print(
                f"   rpcsvc over JSON-RPC (batches of {batch}, 4 in flight, created and waited): "
                f"{served:>9,.0f} tasks/s"
            )
            print(f"   rpcsvc / raw = {served / raw:.2f}x   (target >= 1.5x)")

            print("\n3. one trivial task's create -> completed round trip over RPC (sequential)")
            samples = []
            for i in range(300):
                t0 = time.perf_counter()
                created = await post(
                    {
                        "jsonrpc": "2.0",
                        "id": 1,
                        "method": "task.create",
                        "params": {
                            "type": "analyze_content",
                            "params": {"texts": [texts[i]], "analysis_types": ["sentiment"]},
                        },
                    }
                )
                task_id = created["result"]["task_id"]  # type: ignore[index]
                done = await post(
                    {
                        "jsonrpc": "2.0",
                        "id": 2,
                        "method": "task.wait",
                        "params": {"task_id": task_id, "timeout": 10},
                    }
                )
                assert done["result"]["status"] == "completed"  # type: ignore[index]
                samples.append((time.perf_counter() - t0) * 1000)
            samples = samples[20:]
            print(
                f"   p50 {statistics.median(samples):.2f} ms, p99 "
                f"{statistics.quantiles(samples, n=100)[98]:.2f} ms   (target p50 <= 2 ms)"
            )
    finally:
        proc.terminate()
        proc.wait()


async def bench_bulk(workers: int, texts: list[str], n: int = 100_000) -> None:
    print(f"\n4. sentiment of one {n:,}-post analyze_content task")
    corpus = [texts[i % len(texts)] for i in range(n)]
    from workers import sentiment

    sentiment.get_analyzer()
    t0 = time.perf_counter()
    for text in corpus:
        sentiment.score(text)
    direct = n / (time.perf_counter() - t0)
    port = free_port()
    proc = start("rpcsvc", port, workers)
    try:
        await wait_until_up(port)
        async with aiohttp.ClientSession() as session:
            url = f"http://127.0.0.1:{port}/rpc"
            t0 = time.perf_counter()
            async with session.post(
                url,
                json={
                    "jsonrpc": "2.0",
                    "id": 1,
                    "method": "task.create",
                    "params": {
                        "type": "analyze_content",
                        "params": {"texts": corpus, "analysis_types": ["sentiment"]},
                    },
                },
            ) as r:
                task_id = (await r.json())["result"]["task_id"]
            while True:
                async with session.post(
                    url,
                    json={
                        "jsonrpc": "2.0",
                        "id": 2,
                        "method": "task.wait",
                        "params": {"task_id": task_id, "timeout": 300},
                    },
                ) as r:
                    record = (await r.json(loads=orjson.loads))["result"]
                if record["status"] != "running" and record["status"] != "pending":
                    break
            served = n / (time.perf_counter() - t0)
        assert record["status"] == "completed", record["error"]
        assert len(record["result"]["posts"]) == n
    finally:
        proc.terminate()
        proc.wait()
    print(f"   VADER directly, one process:        {direct:>9,.0f} posts/s")
    print(f"   rpcsvc, {workers} workers, incl. HTTP both ways: {served:>9,.0f} posts/s")
    from datetime import datetime

    run = datetime.fromisoformat(record["finished_at"]) - datetime.fromisoformat(
        record["started_at"]
    )
    in_server = n / run.total_seconds()
    print(f"   rpcsvc, the task itself (started -> finished): {in_server:>9,.0f} posts/s")
    print(
        f"   rpcsvc / direct = {served / direct:.2f}x end to end, {in_server / direct:.2f}x "
        "in the server   (target >= 1.8x on two cores)"
    )


def load_texts() -> list[str]:
    path = SHARED / "data" / "reddit_comment_2022-11-08.json.gz"
    with gzip.open(path, "rt") as f:
        bodies = [orjson.loads(line)["body"] for line in f]
    return [b for b in bodies if b and b not in ("[deleted]", "[removed]")]


async def main(workers: int, seconds: int, parts: set[str]) -> None:
    texts = load_texts()
    print(
        f"rpcsvc core benchmark - {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, "
        f"{len(texts):,} real Reddit comments as input"
    )
    if "http" in parts:
        if shutil.which("wrk"):
            await bench_http(workers, seconds)
        else:
            print("\n1. skipped: wrk not installed (apt-get install wrk)")
    if "tiny" in parts:
        await bench_tiny_tasks(workers, texts)
    if "bulk" in parts:
        await bench_bulk(workers, texts)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1].startswith("--serve-"):
        {"--serve-bare": serve_bare, "--serve-stock": serve_stock}[sys.argv[1]](int(sys.argv[2]))
        sys.exit(0)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument(
        "--only",
        default="http,tiny,bulk",
        help="comma-separated parts to run: http (1), tiny (2 and 3), bulk (4)",
    )
    args = parser.parse_args()
    asyncio.run(main(args.workers, args.seconds, set(args.only.split(","))))
