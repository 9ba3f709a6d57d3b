"""Connectors, the shared HTTP client and the collection driver, against local fake platforms.

Waits are checked on a virtual clock (``VirtualTime``) unless a test is about real time
(a request timeout, a real Retry-After), where the delays are sub-second.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from rpcsvc.content import ContentStore
from rpcsvc.errors import CollectionError, EntityNotFound, InvalidParams, PathNotAllowed
from tests.fake_platforms import (
    HANG,
    FakeBluesky,
    FakeMastodon,
    FakeReddit,
    Fault,
    bluesky_item,
    mastodon_account,
    mastodon_status,
    reddit_comment,
)
from workers.collection import (
    CollectionSettings,
    HttpClient,
    HttpSettings,
    collect,
    get_connector,
    validate_request,
)
from workers.collection.http import parse_reset, parse_retry_after, rate_limit_quota
from workers.collection.mastodon import html_to_text

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
T0 = datetime(2022, 11, 8, 12, 0, tzinfo=UTC)
EPOCH0 = 1_700_000_000.0


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")


class VirtualTime:
    """Clock and sleep for HttpClient: sleeping records the delay and moves the clock on."""

    def __init__(self) -> None:
        self.now = 0.0
        self.delays: list[float] = []

    def clock(self) -> float:
        return self.now

    def wall(self) -> float:
        return EPOCH0 + self.now

    async def sleep(self, delay: float) -> None:
        self.delays.append(round(delay, 3))
        self.now += delay
        await asyncio.sleep(0)


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client_session:
        yield client_session


@pytest.fixture
def vtime() -> VirtualTime:
    return VirtualTime()


@pytest.fixture
def make_http(session: aiohttp.ClientSession, vtime: VirtualTime) -> Callable[..., HttpClient]:
    def make(*, real_time: bool = False, **settings: Any) -> HttpClient:
        defaults: dict[str, Any] = {"backoff_base": 0.01, "request_timeout": 5.0, "max_attempts": 4}
        config = HttpSettings(**(defaults | settings))
        if real_time:
            return HttpClient(session, config, jitter=lambda: 1.0)
        return HttpClient(
            session, config, sleep=vtime.sleep, clock=vtime.clock, wall_clock=vtime.wall,
            jitter=lambda: 1.0,
        )  # fmt: skip

    return make


async def serve(aiohttp_server: Any, fake: Any) -> Any:
    server = await aiohttp_server(fake.app)
    fake.base_url = str(server.make_url("")).rstrip("/")
    return fake


def statuses_for(account: dict[str, Any], count: int, first_id: int = 1000) -> list[dict[str, Any]]:
    return [
        mastodon_status(
            first_id + i, account, f"<p>post {i} &amp; more</p>", iso(T0 + timedelta(minutes=i))
        )
        for i in range(count)
    ]


@pytest.fixture
async def mastodon(aiohttp_server: Any) -> AsyncIterator[FakeMastodon]:
    fake = FakeMastodon()
    for number, acct in enumerate(("alice", "bob", "carol", "dave", "erin", "frank"), 1):
        account = mastodon_account(str(number), acct)
        count = 95 if acct == "alice" else 3
        fake.add_account(account, statuses_for(account, count, first_id=1000 * number))
    await serve(aiohttp_server, fake)
    yield fake
    fake.release.set()


@pytest.fixture
async def bluesky(aiohttp_server: Any) -> AsyncIterator[FakeBluesky]:
    fake = FakeBluesky()
    items = [
        bluesky_item(
            "did:plc:bob", "bob.test", f"3k{i:03d}", f"post {i}", iso(T0 - timedelta(minutes=i))
        )
        for i in range(30)
    ]
    fake.add_actor("did:plc:bob", "bob.test", items)
    await serve(aiohttp_server, fake)
    yield fake
    fake.release.set()


@pytest.fixture
async def reddit(aiohttp_server: Any) -> AsyncIterator[FakeReddit]:
    fake = FakeReddit()
    fake.listings["/r/politics/new.json"] = [
        reddit_comment(
            f"c{i:03d}", f"user{i % 7}", f"comment {i} by u/someone https://ex.com/{i}.",
            int((T0 - timedelta(minutes=i)).timestamp()), subreddit="politics", parent="t3_abc",
        )
        for i in range(250)
    ]  # fmt: skip
    await serve(aiohttp_server, fake)
    yield fake
    fake.release.set()


def connector(name: str, http: HttpClient | None, **settings: Any) -> Any:
    return get_connector(name, http=http, settings=CollectionSettings(**settings))


async def fetch_all(conn: Any, entity: str, **kwargs: Any) -> list[dict[str, Any]]:
    args: dict[str, Any] = {"since": None, "until": None, "limit": None, "options": {}} | kwargs
    return [post async for page in conn.fetch(entity, **args) for post in page]


# --- Mastodon --------------------------------------------------------------------------------


def test_mastodon_html_becomes_plain_text_with_links_kept_whole() -> None:
    html = (
        '<p>Hello <span class="h-card"><a href="https://ex.social/@bob" class="u-url mention">'
        '@<span>bob</span></a></span>, see <a href="https://example.com/a/long/path" '
        'rel="nofollow noopener" target="_blank"><span class="invisible">https://</span>'
        '<span class="ellipsis">example.com/a/lo</span><span class="invisible">ng/path</span>'
        '</a> <a href="https://ex.social/tags/vote" class="mention hashtag" rel="tag">'
        "#<span>vote</span></a></p><p>line one<br />line two &amp; &lt;three&gt;</p>"
    )
    assert html_to_text(html) == (
        "Hello @bob, see https://example.com/a/long/path #vote\n\nline one\nline two & <three>",
        ["https://example.com/a/long/path"],
    )


async def test_mastodon_account_pages_through_link_headers(
    mastodon: FakeMastodon, make_http: Callable[..., HttpClient]
) -> None:
    conn = connector("mastodon", make_http())
    options = {"base_url": mastodon.base_url, "access_token": "s3cret"}
    posts = await fetch_all(conn, "@alice", options=options)
    # 95 statuses at 40 a page: three pages, then an empty answer ends the Link chain.
    assert len(posts) == 95 == len({p["content_id"] for p in posts})
    assert [p["id"] for p in posts[:2]] == ["127.0.0.1/1094", "127.0.0.1/1093"]
    statuses = [s for s in mastodon.requests if s.path.endswith("/statuses")]
    assert [s.query.get("max_id") for s in statuses] == [None, "1055", "1015", "1000"]
    assert all(s.query["exclude_reblogs"] == "true" for s in statuses)
    assert {s.headers["Authorization"] for s in mastodon.requests} == {"Bearer s3cret"}
    assert posts[-1]["text"] == "post 0 & more"


async def test_mastodon_status_is_normalised_whole(
    mastodon: FakeMastodon, make_http: Callable[..., HttpClient]
) -> None:
    account = mastodon_account("9", "zoe", "Zoë")
    bob = mastodon.accounts["bob"]
    status = mastodon_status(
        5000, account,
        '<p>Reply to <span class="h-card"><a href="https://ex/@bob" class="u-url mention">@<span>'
        'bob</span></a></span> <a href="https://ex/tags/Vote" class="mention hashtag" rel="tag">#'
        '<span>Vote</span></a> <a href="https://news.example/x">news.example/x</a></p>',
        "2022-11-08T23:59:59.900Z",
        in_reply_to_id="1001", in_reply_to_account_id=bob["id"],
        mentions=[{"id": bob["id"], "username": "bob", "acct": "bob", "url": "https://ex/@bob"},
                  {"id": "77", "username": "eve", "acct": "eve@other.social", "url": "u"}],
        tags=[{"name": "Vote", "url": "https://ex/tags/Vote"}],
        replies_count=2, reblogs_count=3, favourites_count=4, language="en",
    )  # fmt: skip
    mastodon.add_account(account, [status])
    conn = connector("mastodon", make_http())
    [post] = await fetch_all(conn, "zoe", options={"base_url": mastodon.base_url})
    assert post == {
        "content_id": "mastodon:127.0.0.1/5000",
        "platform": "mastodon",
        "id": "127.0.0.1/5000",
        "author": {"id": "9", "handle": "zoe@127.0.0.1", "name": "Zoë"},
        "text": "Reply to @bob #Vote news.example/x",
        "created_at": "2022-11-08T23:59:59Z",
        "reply_to": {"post": "mastodon:127.0.0.1/1001", "author": "bob@127.0.0.1"},
        "mentions": ["bob@127.0.0.1", "eve@other.social"],
        "hashtags": ["Vote"],
        "urls": ["https://news.example/x"],
        "metrics": {"replies": 2, "reposts": 3, "likes": 4},
        "lang": "en",
        "url": "https://example.social/@zoe/5000",
    }


async def test_mastodon_hashtag_paging_stops_once_past_since(
    mastodon: FakeMastodon, make_http: Callable[..., HttpClient]
) -> None:
    account = mastodon.accounts["bob"]
    mastodon.tags["vote"] = sorted(statuses_for(account, 100, 9000), key=lambda s: -int(s["id"]))
    conn = connector("mastodon", make_http())
    since = T0 + timedelta(minutes=70)  # the 30 newest statuses are at or after it
    posts = await fetch_all(conn, "#vote", since=since, options={"base_url": mastodon.base_url})
    assert len(posts) == 30
    assert min(p["created_at"] for p in posts) == "2022-11-08T13:10:00Z"
    # Page 1 (40 statuses) already reaches past `since`: no second request.
    assert mastodon.paths() == ["/api/v1/timelines/tag/vote"]


async def test_collect_keeps_going_when_one_entity_is_unknown(
    mastodon: FakeMastodon, make_http: Callable[..., HttpClient]
) -> None:
    store = ContentStore(max_posts=1000)
    done: list[str] = []
    result = await collect(
        connector("mastodon", make_http()),
        ["bob", "ghost", "carol", "bob"],
        store=store,
        options={"base_url": mastodon.base_url},
        on_entity_done=lambda entity, _: done.append(entity),
    )
    assert sorted(done) == ["bob", "carol", "ghost"]
    assert result["failed"] == ["ghost"]
    assert result["errors"] == [
        {
            "entity_id": "ghost",
            "type": "EntityNotFound",
            "message": "Mastodon account 'ghost' on 127.0.0.1 not found (HTTP 404)",
            "data": {"status": 404, "url": f"{mastodon.base_url}/api/v1/accounts/lookup"},
        }
    ]
    bob = result["entities"]["bob"]
    assert (bob["collected"], bob["stored"], bob["added"], bob["error"]) == (3, 3, 3, None)
    assert result["total_collected"] == result["total_stored"] == len(store) == 6
    assert store.get(result["content_ids"]) == [
        p for e in ("bob", "carol") for p in store.get(result["entities"][e]["content_ids"])
    ]
    # Collecting again updates the same posts instead of duplicating them.
    again = await collect(
        connector("mastodon", make_http()), ["bob"], store=store,
        options={"base_url": mastodon.base_url},
    )  # fmt: skip
    assert (again["entities"]["bob"]["added"], again["entities"]["bob"]["updated"]) == (0, 3)
    assert len(store) == 6


async def test_collect_fails_when_every_entity_fails(
    mastodon: FakeMastodon, make_http: Callable[..., HttpClient]
) -> None:
    with pytest.raises(EntityNotFound, match="all 2 entities failed") as caught:
        await collect(
            connector("mastodon", make_http()), ["ghost", "nobody"], store=ContentStore(),
            options={"base_url": mastodon.base_url},
        )  # fmt: skip
    assert [e["type"] for e in caught.value.data["errors"]] == ["EntityNotFound"] * 2

    # Failures of different kinds: the run fails with the general CollectionError.
    mastodon.script("/api/v1/accounts/lookup", Fault(403))
    with pytest.raises(CollectionError) as mixed:
        await collect(
            connector("mastodon", make_http()), ["ghost", "nobody"], store=ContentStore(),
            options={"base_url": mastodon.base_url},
        )  # fmt: skip
    assert type(mixed.value) is CollectionError
    assert sorted(e["type"] for e in mixed.value.data["errors"]) == [
        "EntityNotFound", "PlatformError",
    ]  # fmt: skip


async def test_per_host_limit_caps_requests_in_flight(
    mastodon: FakeMastodon, make_http: Callable[..., HttpClient]
) -> None:
    # Each answer is held back a little so that the six entities' requests overlap.
    mastodon.script("/api/v1/accounts/lookup", *[Fault(delay=0.05)] * 6)
    result = await collect(
        connector("mastodon", make_http(per_host_limit=2)),
        ["alice", "bob", "carol", "dave", "erin", "frank"],
        store=ContentStore(), options={"base_url": mastodon.base_url}, concurrency=6,
    )  # fmt: skip
    assert result["failed"] == []
    assert mastodon.max_in_flight == 2


# --- Bluesky ---------------------------------------------------------------------------------


async def test_bluesky_facets_use_utf8_byte_offsets(
    bluesky: FakeBluesky, make_http: Callable[..., HttpClient]
) -> None:
    # The emoji and the accented letters take more bytes than characters: char offsets would
    # cut the mention in the wrong place.
    text = "🗳️🎉 Café vote! @alice.test says hi — read example.com/x #Midterms"
    item = bluesky_item(
        "did:plc:carol", "carol.test", "3kabc", text, "2022-11-08T20:00:00.123Z",
        mentions={"@alice.test": "did:plc:alice"}, links={"example.com/x": "https://example.com/x"},
        tags=("Midterms",), reply_parent="at://did:plc:bob/app.bsky.feed.post/3k001", likes=5,
    )  # fmt: skip
    bluesky.add_actor("did:plc:carol", "carol.test", [item])
    conn = connector("bluesky", make_http())
    [post] = await fetch_all(conn, "@carol.test", options={"base_url": bluesky.base_url})
    assert post == {
        "content_id": "bluesky:at://did:plc:carol/app.bsky.feed.post/3kabc",
        "platform": "bluesky",
        "id": "at://did:plc:carol/app.bsky.feed.post/3kabc",
        "author": {"id": "did:plc:carol", "handle": "carol.test", "name": "Carol"},
        "text": text,
        "created_at": "2022-11-08T20:00:00Z",
        "reply_to": {"post": "bluesky:at://did:plc:bob/app.bsky.feed.post/3k001",
                     "author": "did:plc:bob"},
        "mentions": ["alice.test"],
        "hashtags": ["Midterms"],
        "urls": ["https://example.com/x"],
        "metrics": {"replies": 0, "reposts": 0, "likes": 5},
        "lang": "en",
        "url": "https://bsky.app/profile/carol.test/post/3kabc",
    }  # fmt: skip
    assert bluesky.requests[0].query == {
        "actor": "carol.test", "limit": "100", "filter": "posts_with_replies",
    }  # fmt: skip


async def test_bluesky_cursor_paging_limit_and_repeated_cursor(
    bluesky: FakeBluesky, make_http: Callable[..., HttpClient]
) -> None:
    conn = connector("bluesky", make_http())
    options = {"base_url": bluesky.base_url, "page_size": 10}
    posts = await fetch_all(conn, "bob.test", limit=25, options=options)
    assert [p["text"] for p in posts] == [f"post {i}" for i in range(25)]
    assert [r.query.get("cursor") for r in bluesky.requests] == [None, "10", "20"]

    # A platform that hands back the cursor it was given must not make us loop.
    bluesky.requests.clear()
    bluesky.stuck_cursor = True
    posts = await fetch_all(conn, "bob.test", options=options)
    assert len(bluesky.requests) == 2 and len(posts) == 20


async def test_bluesky_unknown_actor_is_entity_not_found(
    bluesky: FakeBluesky, make_http: Callable[..., HttpClient]
) -> None:
    with pytest.raises(EntityNotFound, match="Profile not found"):
        await fetch_all(
            connector("bluesky", make_http()), "nobody.test", options={"base_url": bluesky.base_url}
        )


# --- Reddit ----------------------------------------------------------------------------------


async def test_reddit_after_paging_stops_at_since(
    reddit: FakeReddit, make_http: Callable[..., HttpClient]
) -> None:
    conn = connector("reddit", make_http(user_agent="rpcsvc-tests/1.0 (by u/tester)"))
    since = T0 - timedelta(minutes=129)
    posts = await fetch_all(conn, "r/politics", since=since, options={"base_url": reddit.base_url})
    assert len(posts) == 130
    assert [r.query.get("after") for r in reddit.requests] == [None, "t1_c099"]
    assert {r.headers["User-Agent"] for r in reddit.requests} == {"rpcsvc-tests/1.0 (by u/tester)"}
    assert reddit.requests[0].query["raw_json"] == "1"
    assert posts[0] == {
        "content_id": "reddit:t1_c000",
        "platform": "reddit",
        "id": "t1_c000",
        "author": {"id": "t2_user0", "handle": "user0", "name": None},
        "text": "comment 0 by u/someone https://ex.com/0.",
        "created_at": "2022-11-08T12:00:00Z",
        "reply_to": {"post": "reddit:t3_abc", "author": None},
        "mentions": ["someone"],
        "hashtags": [],
        "urls": ["https://ex.com/0"],
        "metrics": {"replies": None, "reposts": None, "likes": 3},
        "lang": None,
        "url": "https://www.reddit.com/r/politics/comments/thread/x/c000/",
    }


async def test_reddit_unknown_user_is_entity_not_found(
    reddit: FakeReddit, make_http: Callable[..., HttpClient]
) -> None:
    with pytest.raises(EntityNotFound, match="user u/nobody not found"):
        await fetch_all(
            connector("reddit", make_http()), "u/nobody", options={"base_url": reddit.base_url}
        )


# --- retries and rate limits -----------------------------------------------------------------


async def test_429_waits_for_retry_after(
    reddit: FakeReddit, vtime: VirtualTime, make_http: Callable[..., HttpClient]
) -> None:
    reddit.script("/r/politics", Fault(429, {"Retry-After": "0.25"}))
    posts = await fetch_all(
        connector("reddit", make_http()),
        "r/politics",
        limit=5,
        options={"base_url": reddit.base_url},
    )
    assert len(posts) == 5
    assert vtime.delays == [0.25]
    assert len(reddit.requests) == 2


async def test_429_retry_after_really_waits(
    reddit: FakeReddit, make_http: Callable[..., HttpClient]
) -> None:
    reddit.script("/r/politics", Fault(429, {"Retry-After": "0.2"}))
    await fetch_all(
        connector("reddit", make_http(real_time=True)), "r/politics", limit=5,
        options={"base_url": reddit.base_url},
    )  # fmt: skip
    first, second = reddit.requests
    assert second.at - first.at >= 0.19


async def test_5xx_is_retried_with_growing_backoff(
    reddit: FakeReddit, vtime: VirtualTime, make_http: Callable[..., HttpClient]
) -> None:
    reddit.script("/r/politics", Fault(500), Fault(502))
    posts = await fetch_all(
        connector("reddit", make_http()),
        "r/politics",
        limit=5,
        options={"base_url": reddit.base_url},
    )
    assert len(posts) == 5 and vtime.delays == [0.01, 0.02]

    reddit.script("/r/politics", *[Fault(503)] * 4)
    with pytest.raises(CollectionError, match="HTTP 503, gave up after 4 attempts"):
        await fetch_all(
            connector("reddit", make_http()), "r/politics", options={"base_url": reddit.base_url}
        )
    assert vtime.delays == [0.01, 0.02, 0.01, 0.02, 0.04]


async def test_4xx_other_than_429_is_not_retried(
    reddit: FakeReddit, vtime: VirtualTime, make_http: Callable[..., HttpClient]
) -> None:
    reddit.script("/r/politics", Fault(403, body={"reason": "private", "error": 403}))
    with pytest.raises(CollectionError, match="HTTP 403"):
        await fetch_all(
            connector("reddit", make_http()), "r/politics", options={"base_url": reddit.base_url}
        )
    assert len(reddit.requests) == 1 and vtime.delays == []


async def test_retry_after_longer_than_allowed_fails_at_once(
    reddit: FakeReddit, vtime: VirtualTime, make_http: Callable[..., HttpClient]
) -> None:
    reddit.script("/r/politics", Fault(429, {"Retry-After": "3600"}))
    with pytest.raises(CollectionError, match="asks to wait 3600 s"):
        await fetch_all(
            connector("reddit", make_http(max_rate_limit_wait=60)), "r/politics",
            options={"base_url": reddit.base_url},
        )  # fmt: skip
    assert vtime.delays == []


@pytest.mark.parametrize(
    ("headers", "wait"),
    [
        ({"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "2023-11-14T22:13:50.000Z"}, 30.0),
        ({"X-Ratelimit-Remaining": "0.0", "X-Ratelimit-Reset": "12"}, 12.0),
        ({"RateLimit-Remaining": "0", "RateLimit-Reset": "7"}, 7.0),
        ({"RateLimit": '"burst";r=3;t=1, "day";r=0;t=5'}, 5.0),
    ],
)
async def test_spent_quota_pauses_the_next_request(
    mastodon: FakeMastodon,
    vtime: VirtualTime,
    make_http: Callable[..., HttpClient],
    headers: dict[str, str],
    wait: float,
) -> None:
    # EPOCH0 + 30 s is 2023-11-14T22:13:50Z, the Mastodon-style ISO reset above.
    mastodon.script("/api/v1/accounts/lookup", Fault(headers=headers))
    posts = await fetch_all(
        connector("mastodon", make_http()), "bob", options={"base_url": mastodon.base_url}
    )
    assert len(posts) == 3 and vtime.delays == [wait]


def test_rate_limit_header_parsing() -> None:
    now = EPOCH0
    assert parse_retry_after("Tue, 14 Nov 2023 22:14:20 GMT", now) == 60.0
    assert parse_retry_after("soon", now) is None
    assert parse_reset(str(int(now) + 90), now) == 90.0  # epoch seconds
    assert rate_limit_quota({"X-RateLimit-Remaining": "5"}, now) is None  # no reset: no pause
    assert rate_limit_quota({"RateLimit": '"d";r=9;t=60'}, now) == (9.0, 60.0)


async def test_slow_answers_time_out_per_request(
    reddit: FakeReddit, make_http: Callable[..., HttpClient]
) -> None:
    http = make_http(real_time=True, request_timeout=0.2, max_attempts=2)
    reddit.script("/r/politics", HANG)
    started = time.monotonic()
    posts = await fetch_all(
        connector("reddit", http), "r/politics", limit=5, options={"base_url": reddit.base_url}
    )
    assert len(posts) == 5 and len(reddit.requests) == 2

    reddit.script("/r/politics", HANG, HANG)
    with pytest.raises(CollectionError, match=r"no answer within request_timeout=0.2 s"):
        await fetch_all(
            connector("reddit", http), "r/politics", options={"base_url": reddit.base_url}
        )
    assert time.monotonic() - started < 2.0


@pytest.mark.parametrize("stuck", ["hanging request", "backoff sleep"])
async def test_cancelling_a_collection_stops_it_promptly(
    mastodon: FakeMastodon, make_http: Callable[..., HttpClient], stuck: str
) -> None:
    if stuck == "hanging request":
        mastodon.script("/api/v1/accounts/2/statuses", HANG)
    else:
        mastodon.script("/api/v1/accounts/2/statuses", Fault(503, {"Retry-After": "30"}))
    http = make_http(real_time=True, max_rate_limit_wait=60)
    task = asyncio.create_task(
        collect(connector("mastodon", http), ["bob"], store=ContentStore(),
                options={"base_url": mastodon.base_url})
    )  # fmt: skip
    await mastodon.arrival("/api/v1/accounts/2/statuses")
    started = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert time.monotonic() - started < 0.5
    assert len(mastodon.paths()) == 2  # the lookup and the one statuses request


# --- file and sample -------------------------------------------------------------------------


def write_jsonl(path: Path, rows: list[Any], *, gz: bool = False) -> None:
    # Strings are written as they are (to make broken lines); anything else as JSON.
    lines = "\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    if gz:
        path.write_bytes(gzip.compress(lines.encode()))
    else:
        path.write_text(lines)


async def test_file_loads_the_pushshift_reddit_dumps() -> None:
    conn = connector("file", None, import_dir=SHARED_DATA)
    store = ContentStore()
    result = await collect(
        conn,
        ["reddit_comment_2022-11-08.json.gz", "reddit_submission_2022-11-08.json.gz"],
        store=store,
    )
    assert result["failed"] == []
    assert result["entities"]["reddit_comment_2022-11-08.json.gz"]["collected"] == 10355
    assert result["entities"]["reddit_submission_2022-11-08.json.gz"]["collected"] == 1903
    assert store.count(platform="reddit") == len(store) == 10355 + 1903
    [first] = store.get(["reddit:t1_ivhejr7"])
    assert first == {
        "content_id": "reddit:t1_ivhejr7",
        "platform": "reddit",
        "id": "t1_ivhejr7",
        "author": {"id": "t2_2kw1g4lm", "handle": "Jaco-Jimmerson", "name": None},
        "text": "That's the spirit Vote BLUE!!",
        "created_at": "2022-11-08T00:00:06Z",
        "reply_to": {"post": "reddit:t1_ivh5cf7", "author": None},
        "mentions": [],
        "hashtags": [],
        "urls": [],
        "metrics": {"replies": None, "reposts": None, "likes": 1},
        "lang": None,
        "url": "https://www.reddit.com/r/politics/comments/yp2c7n/"
        "biden_acknowledges_dems_keeping_congress_is_a/ivhejr7/",
    }
    [submission] = store.get(["reddit:t3_yp5dti"])
    assert submission["urls"] == [
        "https://www.bbc.co.uk/news/world-us-canada-63548188?at_medium=RSS&at_campaign=KARANGA"
    ]


async def test_file_reads_directories_of_normalised_posts(tmp_path: Path) -> None:
    post = {"platform": "upload", "id": "1", "text": "hi", "created_at": "2022-11-08T10:00:00Z"}
    write_jsonl(tmp_path / "in" / "a.jsonl", [post, {**post, "id": "2", "created_at": None}])
    write_jsonl(
        tmp_path / "in" / "deeper" / "b.jsonl.gz",
        [{"content_id": "x:9", "text": "gz", "created_at": "2022-11-09T00:00:00+01:00"}],
        gz=True,
    )
    (tmp_path / "in" / "notes.txt").write_text("not data")
    conn = connector("file", None, import_dir=tmp_path)
    posts = await fetch_all(conn, "in")
    assert [(p["content_id"], p["created_at"]) for p in posts] == [
        ("upload:1", "2022-11-08T10:00:00Z"),
        ("upload:2", None),
        ("x:9", "2022-11-08T23:00:00Z"),
    ]
    since = datetime(2022, 11, 8, 12, tzinfo=UTC)
    assert [p["id"] for p in await fetch_all(conn, str(tmp_path / "in"), since=since)] == ["9"]


async def test_file_bad_lines_fail_naming_the_line_unless_skipped(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "bad.jsonl", [{"id": "1", "text": "ok"}, "{not json", {"x": 1}])
    conn = connector("file", None, import_dir=tmp_path)
    with pytest.raises(CollectionError, match=r"bad\.jsonl line 2: "):
        await fetch_all(conn, "bad.jsonl")
    posts = await fetch_all(conn, "bad.jsonl", options={"skip_invalid": True})
    assert [p["content_id"] for p in posts] == ["upload:1"]


async def test_file_refuses_paths_outside_the_import_folder(tmp_path: Path) -> None:
    root = tmp_path / "import"
    write_jsonl(root / "ok.jsonl", [{"id": "1", "text": "ok"}])
    write_jsonl(tmp_path / "secret.jsonl", [{"id": "2", "text": "secret"}])
    (root / "escape.jsonl").symlink_to(tmp_path / "secret.jsonl")
    (root / "dir").mkdir()
    (root / "dir" / "escape.jsonl").symlink_to(tmp_path / "secret.jsonl")
    conn = connector("file", None, import_dir=root)
    for entity in ("../secret.jsonl", str(tmp_path / "secret.jsonl"), "escape.jsonl", "dir",
                   "../missing.jsonl"):  # fmt: skip
        with pytest.raises(PathNotAllowed):
            await fetch_all(conn, entity)
    with pytest.raises(EntityNotFound):
        await fetch_all(conn, "missing.jsonl")
    with pytest.raises(PathNotAllowed, match="no import folder"):
        await fetch_all(connector("file", None), "ok.jsonl")
    assert len(await fetch_all(conn, "ok.jsonl")) == 1


async def test_sample_corpus_entities() -> None:
    conn = connector("sample", None)
    everything = await fetch_all(conn, "all")
    assert 2000 <= len(everything) <= 5000
    assert everything == sorted(everything, key=lambda p: p["created_at"], reverse=True)
    politics = await fetch_all(conn, "r/Politics")
    assert politics and all("/r/politics/" in p["url"] for p in politics)
    author = everything[0]["author"]["handle"]
    assert {p["author"]["handle"] for p in await fetch_all(conn, f"u/{author}")} == {author}
    newest = await fetch_all(conn, "all", limit=10)
    assert newest == everything[:10]
    with pytest.raises(EntityNotFound):
        await fetch_all(conn, "r/no_such_subreddit_here")
    store = ContentStore()
    assert store.add(everything)["added"] == len(everything)  # it passes the store's checks


# --- request validation ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"platform": "twitter", "entity_ids": ["a"]}, "platform"),
        ({"platform": "sample", "entity_ids": []}, "entity_ids"),
        ({"platform": "sample", "entity_ids": ["all", 3]}, "entity_ids[1]"),
        ({"platform": "reddit", "entity_ids": ["r/ok", "politics"]}, "entity_ids[1]"),
        ({"platform": "mastodon", "entity_ids": ["#ok", "#not ok"]}, "entity_ids[1]"),
        ({"platform": "bluesky", "entity_ids": ["a.b"], "options": {"filter": "x"}},
         "options.filter"),
        ({"platform": "mastodon", "entity_ids": ["a"], "options": {"colour": 1}}, "options.colour"),
        ({"platform": "mastodon", "entity_ids": ["a"], "options": {"base_url": "ftp://x"}},
         "options.base_url"),
        ({"platform": "sample", "entity_ids": ["all"], "since": "yesterday"}, "since"),
        ({"platform": "sample", "entity_ids": ["all"], "since": "2022-11-09",
          "until": "2022-11-08"}, "until"),
        ({"platform": "sample", "entity_ids": ["all"], "limit_per_entity": 0}, "limit_per_entity"),
    ],
)  # fmt: skip
def test_validate_request_names_the_bad_field(kwargs: dict[str, Any], field: str) -> None:
    platform, entity_ids = kwargs.pop("platform"), kwargs.pop("entity_ids")
    with pytest.raises(InvalidParams) as caught:
        validate_request(platform, entity_ids, **kwargs)
    assert caught.value.field == field


def test_validate_request_accepts_good_params() -> None:
    validate_request(
        "bluesky", ["alice.bsky.social", "did:plc:abc123"], options={"filter": "posts_no_replies"},
        since="2022-11-08T00:00:00Z", until="2022-11-09T00:00:00Z", limit_per_entity=50,
    )  # fmt: skip
