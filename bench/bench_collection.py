"""Collection speed, side by side on this machine. Run from the project root::

    python bench/bench_collection.py

1. ``ContentStore.add`` of 200,000 normalised posts (validation included), posts/s.
2. The ``file`` connector on the MEIU22 Reddit comment dump (10,355 lines), against a bare
   ``gzip`` + ``orjson`` read of the same file, posts/s.
3. Collecting 16 Mastodon accounts x 400 statuses from a local fake instance that takes
   20 ms an answer (a stand-in for network latency), with ``per_host_limit`` 1 against 4.
4. ``content.add`` of 100,000 posts in one call through the real server: the call's time and
   the longest the event loop was held (late wake-ups of a 5 ms sleep), validating in a
   thread (as served) against validating on the event loop.
"""

from __future__ import annotations

import asyncio
import gzip
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from aiohttp import web

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rpcsvc import content_methods  # noqa: E402
from rpcsvc.app import create_app  # noqa: E402
from rpcsvc.config import Settings  # noqa: E402
from rpcsvc.content import ContentStore, validate_posts  # noqa: E402
from tests.fake_platforms import FakeMastodon, Fault, mastodon_account, mastodon_status  # noqa: E402
from workers.collection import (  # noqa: E402
    CollectionSettings,
    HttpClient,
    HttpSettings,
    collect,
    get_connector,
)
from workers.collection.sample import load_corpus  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"
DUMP = "reddit_comment_2022-11-08.json.gz"


def bench_store() -> None:
    corpus = load_corpus()
    posts = [
        dict(corpus[i % len(corpus)], id=f"x{i}", content_id=f"reddit:x{i}") for i in range(200_000)
    ]
    started = time.perf_counter()
    validated = validate_posts(posts)
    checked = time.perf_counter() - started
    started = time.perf_counter()
    ContentStore().add(validated)
    stored = time.perf_counter() - started
    print(
        f"content store, 200,000 posts: validate_posts {checked:.2f} s "
        f"({200_000 / checked:,.0f} posts/s), then add {stored:.2f} s "
        f"({200_000 / stored:,.0f} posts/s)"
    )


async def bench_file() -> None:
    started = time.perf_counter()
    with gzip.open(SHARED / DUMP, "rb") as lines:
        bare = [orjson.loads(line) for line in lines]
    bare_s = time.perf_counter() - started
    store = ContentStore()
    conn = get_connector("file", http=None, settings=CollectionSettings(import_dir=SHARED))
    started = time.perf_counter()
    result = await collect(conn, [DUMP], store=store)
    ours = time.perf_counter() - started
    n = result["total_stored"]
    assert n == len(bare)
    print(
        f"file connector, {n:,} Pushshift comments into the store: {ours:.2f} s "
        f"({n / ours:,.0f} posts/s); bare gzip+orjson read {bare_s:.2f} s "
        f"(ratio {ours / bare_s:.1f}x)"
    )


async def bench_http() -> None:
    fake = FakeMastodon()
    for number in range(1, 17):
        account = mastodon_account(str(number), f"user{number}")
        fake.add_account(
            account,
            [
                mastodon_status(
                    number * 10_000 + i, account, f"<p>post {i}</p>", "2022-11-08T12:00:00Z"
                )
                for i in range(400)
            ],
        )
    runner = web.AppRunner(fake.app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    base = f"http://127.0.0.1:{port}"
    timings: dict[int, float] = {}
    try:
        async with aiohttp.ClientSession() as session:
            for limit in (1, 4):
                fake.script("/api/v1/", *[Fault(delay=0.02)] * 10_000)
                http = HttpClient(session, HttpSettings(per_host_limit=limit))
                conn = get_connector("mastodon", http=http, settings=CollectionSettings())
                started = time.perf_counter()
                result: dict[str, Any] = await collect(
                    conn, [f"user{n}" for n in range(1, 17)], store=ContentStore(),
                    options={"base_url": base}, concurrency=16,
                )  # fmt: skip
                timings[limit] = time.perf_counter() - started
                fake.faults.clear()
                print(
                    f"mastodon, 16 accounts x 400 statuses, per_host_limit={limit}: "
                    f"{timings[limit]:.2f} s, "
                    f"{result['total_stored'] / timings[limit]:,.0f} posts/s,"
                    f" {http.stats['requests']} requests, max in flight {fake.max_in_flight}"
                )
                fake.max_in_flight = 0
    finally:
        fake.release.set()
        await runner.cleanup()
    print(f"per_host_limit 4 vs 1: {timings[1] / timings[4]:.1f}x faster")


async def watch_loop(lags: list[float], done: asyncio.Event) -> None:
    """How late each 5 ms sleep wakes up: how long something else held the event loop."""
    while not done.is_set():
        started = time.perf_counter()
        await asyncio.sleep(0.005)
        lags.append(time.perf_counter() - started - 0.005)


async def bench_upload() -> None:
    from aiohttp.test_utils import TestClient, TestServer

    corpus = load_corpus()
    posts = [
        dict(corpus[i % len(corpus)], id=f"u{i}", content_id=f"reddit:u{i}") for i in range(100_000)
    ]
    body = orjson.dumps(
        {"jsonrpc": "2.0", "id": 1, "method": "content.add", "params": {"posts": posts}}
    )
    thresholds = {"a thread": content_methods.VALIDATE_IN_THREAD, "the event loop": 10**9}
    for label, threshold in thresholds.items():
        content_methods.VALIDATE_IN_THREAD = threshold
        app = create_app(Settings(workers=1))
        async with TestClient(TestServer(app)) as http:
            lags: list[float] = []
            done = asyncio.Event()
            watcher = asyncio.create_task(watch_loop(lags, done))
            started = time.perf_counter()
            # A raw POST: the client library's per-value serialisation would dominate the time.
            async with http.post("/rpc", data=body) as response:
                answer = orjson.loads(await response.read())
            took = time.perf_counter() - started
            done.set()
            await watcher
            assert answer["result"]["added"] == len(posts), answer
            print(
                f"content.add of 100,000 posts ({len(body) / 2**20:.0f} MiB) validated in "
                f"{label}: {took:.2f} s; longest event-loop stall {max(lags) * 1000:.0f} ms"
            )
    content_methods.VALIDATE_IN_THREAD = thresholds["a thread"]


def main() -> None:
    bench_store()
    asyncio.run(bench_file())
    asyncio.run(bench_http())
    asyncio.run(bench_upload())


if __name__ == "__main__":
    main()
