"""Core benchmark: JSON-RPC serving, tiny-task throughput, round trip, bulk sentiment.

Run from the repository root, in one go (needs `wrk` for the HTTP part: apt-get install wrk):

    python bench/bench_core.py [--workers 2] [--seconds 4] [--rounds 5] [--only http,tiny,bulk]
                               [--log-level warning]

Every figure is printed beside its baseline measured in the same run on the same machine;
parts 1 and 2 alternate rpcsvc and its baselines for --rounds rounds and print the medians.
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
# The server under test logs warnings only: at INFO each task writes three transition lines.
SERVER_LOG_LEVEL = "warning"


# --- servers under test (each in its own process) ------------------------------------------


def serve_bare(port: int, record_file: str) -> None:
    """The floor: a plain aiohttp handler that parses the JSON-RPC body and answers it with the
    same task record rpcsvc answers."""
    from aiohttp import web

    record = orjson.loads(Path(record_file).read_bytes())

    async def handler(request: web.Request) -> web.Response:
        message = orjson.loads(await request.read())
        body = orjson.dumps({"jsonrpc": "2.0", "result": record, "id": message["id"]})
        return web.Response(body=body, content_type="application/json")

    app = web.Application()
    app.router.add_post("/rpc", handler)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


def serve_stock(port: int, record_file: str) -> None:
    """Stock aiohttp-jsonrpc answering a trivial method (``status``), and a method that answers
    the same task record rpcsvc answers (``record``)."""
    from aiohttp import web
    from aiohttp_jsonrpc import handler

    record = orjson.loads(Path(record_file).read_bytes())

    class View(handler.JSONRPCView):
        def rpc_status(self) -> dict[str, str]:
            return {"task_id": "x", "status": "completed"}

        def rpc_record(self) -> dict[str, object]:
            return record

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


def start(kind: str, port: int, workers: int, record_file: str = "") -> subprocess.Popen[bytes]:
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
            SERVER_LOG_LEVEL,
        ]
    else:
        cmd = [sys.executable, __file__, f"--serve-{kind}", str(port), record_file]
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


async def bench_http(workers: int, seconds: int, rounds: int) -> None:
    print(
        f"\n1. task.status over loopback, 64 concurrent connections (wrk, {seconds} s a run, "
        f"median of {rounds} interleaved rounds)"
    )
    record_file = Path(tempfile.mkdtemp()) / "record.json"

    def call(method: str, params: dict[str, object]) -> bytes:
        return orjson.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params})

    procs = []
    try:
        # rpcsvc first: the others answer the record it answers (a finished one-text task's).
        rpcsvc_port = free_port()
        procs.append(start("rpcsvc", rpcsvc_port, workers))
        await wait_until_up(rpcsvc_port)
        url = f"http://127.0.0.1:{rpcsvc_port}/rpc"
        async with aiohttp.ClientSession() as s:
            create = call("task.create", {"type": "analyze_content", "params": {"texts": ["ok"]}})
            async with s.post(url, data=create) as r:
                task_id = (await r.json())["result"]["task_id"]
            async with s.post(url, data=call("task.wait", {"task_id": task_id})) as r:
                record = (await r.json())["result"]
        assert record["status"] == "completed", record
        record_file.write_bytes(orjson.dumps(record))
        size = len(orjson.dumps(record))
        ports = {}
        for kind in ("bare", "stock"):
            ports[kind] = free_port()
            procs.append(start(kind, ports[kind], workers, str(record_file)))
            await wait_until_up(ports[kind])
        status = call("task.status", {"task_id": task_id})
        servers = {  # name -> (port, request body)
            "rpcsvc task.status": (rpcsvc_port, status),
            f"bare aiohttp handler, same record ({size:,} B)": (ports["bare"], status),
            "stock aiohttp-jsonrpc, trivial method": (ports["stock"], call("status", {})),
            "stock aiohttp-jsonrpc, same record": (ports["stock"], call("record", {})),
        }
        runs: dict[str, list[dict[str, float]]] = {name: [] for name in servers}
        for _ in range(rounds):
            for name, (port, body) in servers.items():
                runs[name].append(wrk(port, body, seconds))
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait()
    print(f"   {'server':<46}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}")
    results = {}
    for name, samples in runs.items():
        median = results[name] = sorted(samples, key=lambda x: x["rps"])[len(samples) // 2]
        print(f"   {name:<46}{median['rps']:>10.0f}{median['p50']:>10.2f}{median['p99']:>10.2f}")
    served = results["rpcsvc task.status"]["rps"]
    stock = results["stock aiohttp-jsonrpc, trivial method"]["rps"]
    stock_record = results["stock aiohttp-jsonrpc, same record"]["rps"]
    bare = results[f"bare aiohttp handler, same record ({size:,} B)"]["rps"]
    print(
        f"   rpcsvc / stock aiohttp-jsonrpc (trivial) = {served / stock:.2f}x (target >= 1.2x); "
        f"/ stock (same record) = {served / stock_record:.2f}x; / bare = {served / bare:.2f}x"
    )


def _vader_one(text: str) -> dict[str, float]:
    from workers import sentiment

    return sentiment.score(text)  # type: ignore[return-value]


def _init_vader() -> None:
    from workers import sentiment

    sentiment.get_analyzer()


async def bench_tiny_tasks(
    workers: int, texts: list[str], rounds: int, n: int = 10_000, batch: int = 500
) -> None:
    print(
        f"\n2. {n:,} tiny CPU tasks (one-post analyze_content), {workers} workers, "
        f"median of {rounds} interleaved rounds"
    )
    loop = asyncio.get_running_loop()
    port = free_port()
    proc = start("rpcsvc", port, workers)
    pool = ProcessPoolExecutor(workers, initializer=_init_vader)
    try:
        await wait_until_up(port)
        url = f"http://127.0.0.1:{port}/rpc"
        async with aiohttp.ClientSession() as session:

            async def post(payload: object) -> object:
                async with session.post(
                    url, data=orjson.dumps(payload), headers={"Content-Type": "application/json"}
                ) as r:
                    return orjson.loads(await r.read())

            async def raw_round() -> float:
                """The baseline: raw run_in_executor of the same VADER call, a pool call each."""
                t0 = time.perf_counter()
                await asyncio.gather(
                    *(
                        loop.run_in_executor(pool, _vader_one, texts[i % len(texts)])
                        for i in range(n)
                    )
                )
                return n / (time.perf_counter() - t0)

            # A batch client: each batch of creates is followed by one batch of waits for the
            # same tasks, with a few batches in flight at once (as for the raw pool, where all
            # 10,000 calls are in flight).
            async def rpcsvc_round() -> float:
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
                return n / (time.perf_counter() - t0)

            await asyncio.gather(
                *(loop.run_in_executor(pool, _vader_one, "warm") for _ in range(workers * 4))
            )
            raw_runs, served_runs = [], []
            server_cpu = 0.0
            for _ in range(rounds):
                raw_runs.append(await raw_round())
                before = main_thread_cpu(proc.pid)
                served_runs.append(await rpcsvc_round())
                server_cpu += main_thread_cpu(proc.pid) - before
            raw, served = statistics.median(raw_runs), statistics.median(served_runs)
            print(f"   raw run_in_executor, ProcessPoolExecutor({workers}): {raw:>9,.0f} tasks/s")
            print(
                f"   rpcsvc over JSON-RPC (batches of {batch}, 4 in flight, created and waited): "
                f"{served:>9,.0f} tasks/s"
            )
            if server_cpu:
                print(
                    "   server's event-loop thread: "
                    f"{server_cpu / (n * rounds) * 1e6:.0f} us CPU a task (from /proc)"
                )
            print(
                f"   rpcsvc / raw = {served / raw:.2f}x   (target >= 1.5x; rounds: "
                + ", ".join(
                    f"{s:,.0f}/{r:,.0f} = {s / r:.2f}x"
                    for s, r in zip(served_runs, raw_runs, strict=True)
                )
                + ")"
            )

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
        pool.shutdown()
        proc.terminate()
        proc.wait()


def main_thread_cpu(pid: int) -> float:
    """CPU seconds of a process's main thread (Linux /proc; 0.0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/task/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


_corpus: list[str] = []  # in a pool process: the texts, loaded by the first call


def _score_share(start: int, step: int, n: int) -> None:
    """Score posts ``start``, ``start + step``, ... below ``n`` of the cycled corpus."""
    from workers import sentiment

    if not _corpus:
        _corpus.extend(load_texts())
    for i in range(start, n, step):
        sentiment.score(_corpus[i % len(_corpus)])


async def bench_bulk(workers: int, texts: list[str], n: int = 100_000) -> None:
    print(f"\n4. sentiment of one {n:,}-post analyze_content task")
    corpus = [texts[i % len(texts)] for i in range(n)]
    from workers import sentiment

    sentiment.get_analyzer()
    t0 = time.perf_counter()
    for text in corpus:
        sentiment.score(text)
    direct = n / (time.perf_counter() - t0)
    # The machine's ceiling: the same scoring split over `workers` processes, nothing else.
    loop = asyncio.get_running_loop()
    with ProcessPoolExecutor(workers, initializer=_init_vader) as pool:
        warm = [loop.run_in_executor(pool, _score_share, 0, 1, 1) for _ in range(workers)]
        await asyncio.gather(*warm)
        t0 = time.perf_counter()
        await asyncio.gather(
            *(loop.run_in_executor(pool, _score_share, i, workers, n) for i in range(workers))
        )
        ceiling = n / (time.perf_counter() - t0)
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
    print(
        f"   VADER directly, {workers} processes (the ceiling): {ceiling:>9,.0f} posts/s "
        f"= {ceiling / direct:.2f}x"
    )
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


async def main(workers: int, seconds: int, rounds: int, parts: set[str]) -> None:
    texts = load_texts()
    print(
        f"rpcsvc core benchmark - {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, "
        f"{len(texts):,} real Reddit comments as input"
    )
    if "http" in parts:
        if shutil.which("wrk"):
            await bench_http(workers, seconds, rounds)
        else:
            print("\n1. skipped: wrk not installed (apt-get install wrk)")
    if "tiny" in parts:
        await bench_tiny_tasks(workers, texts, rounds)
    if "bulk" in parts:
        await bench_bulk(workers, texts)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1].startswith("--serve-"):
        serve = {"--serve-bare": serve_bare, "--serve-stock": serve_stock}[sys.argv[1]]
        serve(int(sys.argv[2]), sys.argv[3])
        sys.exit(0)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seconds", type=int, default=4, help="length of one wrk run")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of parts 1 and 2 (medians)")
    parser.add_argument(
        "--only",
        default="http,tiny,bulk",
        help="comma-separated parts to run: http (1), tiny (2 and 3), bulk (4)",
    )
    parser.add_argument(
        "--log-level", default=SERVER_LOG_LEVEL, help="the rpcsvc server's --log-level"
    )
    args = parser.parse_args()
    SERVER_LOG_LEVEL = args.log_level
    asyncio.run(main(args.workers, args.seconds, args.rounds, set(args.only.split(","))))
