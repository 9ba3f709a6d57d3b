"""Collection and the content store through the real server, driven over JSON-RPC.

Platforms are the local fakes of ``tests/fake_platforms.py`` (on 127.0.0.1), the ``sample``
corpus shipped in the package, and the MEIU22 dumps in ``../shared/data`` read by ``file``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from rpcsvc import errors
from rpcsvc.app import MANAGER_KEY, create_app
from rpcsvc.client import RpcClient
from rpcsvc.collect import CONTENT_KEY, HTTP_KEY
from rpcsvc.config import Settings
from rpcsvc.errors import ConfigError
from tests.conftest import Service, StartService
from tests.fake_platforms import HANG, FakeMastodon, Fault, mastodon_account, mastodon_status

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SUBMISSIONS = "reddit_submission_2022-11-08.json.gz"


def upload(post_id: str, text: str, **fields: Any) -> dict[str, Any]:
    return {"id": post_id, "text": text, **fields}


def stored(post_id: str, text: str, **fields: Any) -> dict[str, Any]:
    """The normalised post the store keeps for ``upload(post_id, text)``."""
    return {
        "content_id": f"upload:{post_id}",
        "platform": "upload",
        "id": post_id,
        "author": {"id": None, "handle": None, "name": None},
        "text": text,
        "created_at": None,
        "reply_to": None,
        "mentions": [],
        "hashtags": [],
        "urls": [],
        "metrics": {"replies": None, "reposts": None, "likes": None},
        "lang": None,
        "url": None,
        **fields,
    }


# --- content.* -------------------------------------------------------------------------------


async def test_content_add_get_update_without_duplicates(service: Service) -> None:
    # Given two uploaded posts
    first = await service.rpc.content_add(
        [upload("1", "Polls close at 8pm", author="alice", created_at=1667930400),
         upload("2", "Turnout looks high")]
    )  # fmt: skip
    assert first == {"added": 2, "updated": 0, "content_ids": ["upload:1", "upload:2"]}
    # When one of them is uploaded again, changed, beside a new one
    second = await service.rpc.content_add(
        [upload("2", "Turnout looks very high", hashtags=["#vote"]), upload("3", "Counting")]
    )
    # Then it is updated in place, not duplicated
    assert second == {"added": 1, "updated": 1, "content_ids": ["upload:2", "upload:3"]}
    assert await service.rpc.content_count() == 3
    got = await service.rpc.content_get(["upload:2", "upload:1"])
    assert got == [
        stored("2", "Turnout looks very high", hashtags=["vote"]),
        stored(
            "1", "Polls close at 8pm", created_at="2022-11-08T18:00:00Z",
            author={"id": None, "handle": "alice", "name": None},
        ),
    ]  # fmt: skip


async def test_content_get_names_the_missing_ids(service: Service) -> None:
    await service.rpc.content_add([upload("1", "here")])
    with pytest.raises(errors.ContentNotFound) as info:
        await service.rpc.content_get(["upload:1", "upload:nope", "reddit:t1_x"])
    assert info.value.code == -32007
    assert info.value.data == {"missing": ["upload:nope", "reddit:t1_x"], "missing_count": 2}


async def test_content_list_pages_and_filters(service: Service) -> None:
    # Given five posts from two platforms
    posts = [
        {"content_id": f"{platform}:{i}", "text": f"post {i}", "author": f"user{i % 2}",
         "created_at": f"2022-11-08T0{i}:00:00Z"}
        for i, platform in enumerate(["reddit", "upload", "reddit", "reddit", "upload"])
    ]  # fmt: skip
    await service.rpc.content_add(posts)
    # When they are listed two at a time
    pages, cursor = [], None
    while True:
        page = await service.rpc.content_list(limit=2, cursor=cursor)
        pages.append([p["content_id"] for p in page["posts"]])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    # Then every post comes once, in the order added
    assert pages == [["reddit:0", "upload:1"], ["reddit:2", "reddit:3"], ["upload:4"]]
    # And platform, author and since filter
    reddit = await service.rpc.content_list(platform="reddit", since="2022-11-08T02:00:00Z")
    assert [p["content_id"] for p in reddit["posts"]] == ["reddit:2", "reddit:3"]
    assert reddit["next_cursor"] is None
    by_author = await service.rpc.content_list(author="USER1")
    assert [p["content_id"] for p in by_author["posts"]] == ["upload:1", "reddit:3"]
    assert await service.rpc.content_count(platform="reddit") == 3
    assert await service.rpc.content_count(platform="mastodon") == 0
    with pytest.raises(errors.InvalidParams) as info:
        await service.rpc.content_list(cursor="not-a-cursor")
    assert (info.value.field, info.value.problem) == (
        "cursor",
        "is not a cursor returned by content.list",
    )
    with pytest.raises(errors.InvalidParams) as info:
        await service.rpc.content_list(limit=1001)
    assert info.value.field == "limit"


async def test_content_add_refuses_a_bad_post_naming_it_and_adds_nothing(
    service: Service,
) -> None:
    # A big upload is validated in a thread: the error is the same
    posts = [upload(str(i), f"post {i}") for i in range(5000)]
    posts[4321] = {"id": "4321", "body": "no text"}
    with pytest.raises(errors.InvalidParams) as info:
        await service.rpc.content_add(posts)
    assert (info.value.code, info.value.field) == (-32602, "posts[4321].body")
    posts[4321] = {"id": "4321"}
    with pytest.raises(errors.InvalidParams) as info:
        await service.rpc.content_add(posts)
    assert (info.value.field, info.value.problem) == ("posts[4321].text", "is required")
    assert await service.rpc.content_count() == 0
    # Fixed, the whole upload goes in
    posts[4321] = upload("4321", "fixed")
    added = await service.rpc.content_add(posts)
    assert (added["added"], added["updated"], len(added["content_ids"])) == (5000, 0, 5000)


async def test_full_store_refuses_the_whole_call(start_service: StartService) -> None:
    # Given a store for three posts holding two
    service = await start_service(max_content=3)
    await service.rpc.content_add([upload("1", "a"), upload("2", "b")])
    # When two new posts and an update are added
    with pytest.raises(errors.ContentStoreFull) as info:
        await service.rpc.content_add([upload("1", "a2"), upload("3", "c"), upload("4", "d")])
    # Then nothing is added or updated, and the error says why
    assert info.value.code == -32008
    assert info.value.data == {"max_posts": 3, "count": 2, "adding": 2}
    assert await service.rpc.content_get(["upload:1"]) == [stored("1", "a")]
    # But updates and one more post still fit
    assert await service.rpc.content_add([upload("1", "a2"), upload("3", "c")]) == {
        "added": 1, "updated": 1, "content_ids": ["upload:1", "upload:3"],
    }  # fmt: skip


async def test_content_calls_over_max_posts_per_task(start_service: StartService) -> None:
    service = await start_service(max_posts_per_task=2)
    with pytest.raises(errors.LimitExceeded) as info:
        await service.rpc.content_get(["a:1", "a:2", "a:3"])
    assert info.value.data == {"field": "content_ids", "max": 2, "got": 3}
    with pytest.raises(errors.LimitExceeded):
        await service.rpc.content_add([upload(str(i), "x") for i in range(3)])


# --- collect from sample, then analyse by content_ids ----------------------------------------


async def test_collect_sample_then_analyse_by_content_ids(service: Service) -> None:
    # Given a collection of the sample corpus, with one entity the corpus does not have
    task = await service.rpc.run(
        "collect_platform_data",
        {"platform": "sample", "entity_ids": ["r/politics", "u/nobody_at_all_here"],
         "limit_per_entity": 25},
    )  # fmt: skip
    # Then the task completed, counting both entities, and stored the 25 newest posts
    assert (task["status"], task["progress"], task["error"]) == (
        "completed", {"done": 2, "total": 2}, None,
    )  # fmt: skip
    result = task["result"]
    ids = result["content_ids"]
    assert len(ids) == 25 and all(cid.startswith("reddit:t") for cid in ids)
    assert result == {
        "platform": "sample",
        "entities": {
            "r/politics": {"collected": 25, "stored": 25, "added": 25, "updated": 0,
                           "content_ids": ids, "error": None},
            "u/nobody_at_all_here": {
                "collected": 0, "stored": 0, "added": 0, "updated": 0, "content_ids": [],
                "error": {"type": "EntityNotFound",
                          "message": "the sample corpus has no posts for 'u/nobody_at_all_here'"},
            },
        },
        "total_collected": 25,
        "total_stored": 25,
        "content_ids": ids,
        "failed": ["u/nobody_at_all_here"],
        "errors": [{"entity_id": "u/nobody_at_all_here", "type": "EntityNotFound",
                    "message": "the sample corpus has no posts for 'u/nobody_at_all_here'"}],
    }  # fmt: skip
    posts = await service.rpc.content_get(ids)
    assert [p["content_id"] for p in posts] == ids
    assert all("/r/politics/" in p["url"] for p in posts)
    # When the stored posts are analysed by content_ids
    by_ids = await service.rpc.run("analyze_content", {"content_ids": ids})
    # Then the rows carry the content_ids, and match analysing the same posts inline
    inline = await service.rpc.run(
        "analyze_content",
        {"posts": [{"id": p["content_id"], "text": p["text"], "created_at": p["created_at"]}
                   for p in posts]},
    )  # fmt: skip
    assert by_ids["status"] == "completed"
    assert [row["id"] for row in by_ids["result"]["posts"]] == ids
    assert by_ids["result"] == inline["result"]
    assert by_ids["params"]["content_ids"] == ids
    # And collecting again updates instead of duplicating
    again = await service.rpc.run(
        "collect_platform_data",
        {"platform": "sample", "entity_ids": ["r/politics"], "limit_per_entity": 25},
    )
    assert again["result"]["entities"]["r/politics"]["updated"] == 25
    assert await service.rpc.content_count() == 25


async def test_analyse_by_unknown_content_ids_fails_at_create(service: Service) -> None:
    await service.rpc.content_add([upload("1", "good news")])
    with pytest.raises(errors.ContentNotFound) as info:
        await service.rpc.create("analyze_content", {"content_ids": ["upload:1", "upload:2"]})
    assert info.value.data == {"missing": ["upload:2"], "missing_count": 1}
    with pytest.raises(errors.InvalidParams) as bad:
        await service.rpc.create("analyze_content", {"content_ids": ["upload:1"], "texts": ["x"]})
    assert (bad.value.field, bad.value.problem) == (
        "params",
        "give exactly one of texts, posts or content_ids",
    )
    assert (await service.rpc.list())["tasks"] == []


async def test_schedule_data_collection_from_python(service: Service) -> None:
    manager = service.manager
    task_id = manager.schedule_data_collection("sample", ["all"], limit_per_entity=3)
    task = await manager.wait(task_id, 30)
    assert task.status.value == "completed"
    assert task.result["total_stored"] == 3
    store = service.http.app[CONTENT_KEY]  # type: ignore[index]
    assert [p["content_id"] for p in store.get(task.result["content_ids"])] == (
        task.result["content_ids"]
    )
    analysis = manager.schedule_content_analysis(task.result["content_ids"])
    assert (await manager.wait(analysis, 30)).status.value == "completed"


# --- params checked at task.create ---------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "field", "problem"),
    [
        ({"platform": "twitter", "entity_ids": ["a"]}, "params.platform", "must be one of"),
        ({"entity_ids": ["a"]}, "params", "must contain ['platform'] properties"),
        ({"platform": "sample", "entity_ids": []}, "params.entity_ids", "at least 1 items"),
        ({"platform": "reddit", "entity_ids": ["r/ok", "politics"]}, "params.entity_ids[1]",
         "'politics': expected r/<subreddit>"),
        ({"platform": "mastodon", "entity_ids": ["a"], "options": {"colour": 1}},
         "params.options.colour", "unknown option; known options: access_token, base_url"),
        ({"platform": "sample", "entity_ids": ["all"], "since": "yesterday"}, "params.since",
         "must be an ISO 8601 time"),
        ({"platform": "sample", "entity_ids": ["all"], "limit_per_entity": 0},
         "params.limit_per_entity", "must be bigger than or equal to 1"),
        ({"platform": "sample", "entity_ids": ["all"], "colour": "red"}, "params",
         "must not contain {'colour'} properties"),
    ],
)  # fmt: skip
async def test_bad_collection_params_fail_at_create(
    service: Service, params: dict[str, Any], field: str, problem: str
) -> None:
    with pytest.raises(errors.InvalidParams) as info:
        await service.rpc.create("collect_platform_data", params)
    assert (info.value.code, info.value.field) == (-32602, field)
    assert problem in info.value.problem
    assert (await service.rpc.list())["tasks"] == []


async def test_collection_errors_keep_their_details(service: Service) -> None:
    with pytest.raises(errors.InvalidParams) as info:
        await service.rpc.create(
            "collect_platform_data", {"platform": "reddit", "entity_ids": ["politics"]}
        )
    assert info.value.data == {
        "field": "params.entity_ids[0]",
        "problem": "'politics': expected r/<subreddit>, u/<user> or u/<user>/submitted",
    }


# --- a Mastodon instance (local fake) --------------------------------------------------------


@pytest.fixture
async def mastodon(aiohttp_server: Any) -> AsyncIterator[FakeMastodon]:
    fake = FakeMastodon()
    for number, (acct, count) in enumerate([("alice", 45), ("bob", 3)], 1):
        account = mastodon_account(str(number), acct)
        statuses = [
            mastodon_status(
                1000 * number + i, account, f"<p>{acct} post {i} &amp; <b>more</b></p>",
                f"2022-11-08T12:{i:02d}:00.000Z",
            )
            for i in range(count)
        ]  # fmt: skip
        fake.add_account(account, statuses)
    server = await aiohttp_server(fake.app)
    fake.base_url = str(server.make_url("")).rstrip("/")
    yield fake
    fake.release.set()


async def test_collect_from_mastodon_with_a_missing_account(
    start_service: StartService, mastodon: FakeMastodon
) -> None:
    # Given a server whose default instance is the fake, and a 500 before alice's first page
    service = await start_service(
        mastodon_url=mastodon.base_url, user_agent="rpcsvc-test/1", http_backoff_base=0.01
    )
    mastodon.script("/api/v1/accounts/1/statuses", Fault(500))
    # When alice, an unknown account and bob are collected
    task = await service.rpc.run(
        "collect_platform_data", {"platform": "mastodon", "entity_ids": ["alice", "ghost", "bob"]}
    )
    # Then the 404 fails only its entity, and alice's 45 statuses came in two pages
    assert (task["status"], task["progress"]) == ("completed", {"done": 3, "total": 3})
    result = task["result"]
    assert {e: (r["collected"], r["added"]) for e, r in result["entities"].items()} == {
        "alice": (45, 45), "ghost": (0, 0), "bob": (3, 3),
    }  # fmt: skip
    assert result["errors"] == [
        {"entity_id": "ghost", "type": "EntityNotFound",
         "message": "Mastodon account 'ghost' on 127.0.0.1 not found (HTTP 404)",
         "data": {"status": 404, "url": f"{mastodon.base_url}/api/v1/accounts/lookup"}},
    ]  # fmt: skip
    assert await service.rpc.content_count(platform="mastodon") == 48
    [newest] = await service.rpc.content_get(["mastodon:127.0.0.1/2002"])
    assert newest == {
        "content_id": "mastodon:127.0.0.1/2002", "platform": "mastodon", "id": "127.0.0.1/2002",
        "author": {"id": "2", "handle": "bob@127.0.0.1", "name": "Bob"},
        "text": "bob post 2 & more", "created_at": "2022-11-08T12:02:00Z", "reply_to": None,
        "mentions": [], "hashtags": [], "urls": [],
        "metrics": {"replies": 0, "reposts": 0, "likes": 0},
        "lang": "en", "url": "https://example.social/@bob/2002",
    }  # fmt: skip
    # And every request went through the server's one client, with the configured agent
    http = service.http.app[HTTP_KEY]  # type: ignore[index]
    assert (http.stats["requests"], http.stats["retries"]) == (len(mastodon.requests), 1)
    assert {seen.headers["User-Agent"] for seen in mastodon.requests} == {"rpcsvc-test/1"}


async def test_collection_where_every_entity_fails_is_failed(
    service: Service, mastodon: FakeMastodon
) -> None:
    task = await service.rpc.run(
        "collect_platform_data",
        {"platform": "mastodon", "entity_ids": ["ghost", "nobody"],
         "options": {"base_url": mastodon.base_url}},
    )  # fmt: skip
    assert (task["status"], task["result"], task["progress"]) == (
        "failed", None, {"done": 2, "total": 2},
    )  # fmt: skip
    assert task["error"] == {
        "type": "EntityNotFound",
        "message": "all 2 entities failed: "
        "ghost: Mastodon account 'ghost' on 127.0.0.1 not found (HTTP 404); "
        "nobody: Mastodon account 'nobody' on 127.0.0.1 not found (HTTP 404)",
    }


async def test_cancel_stops_a_running_collection(
    start_service: StartService, mastodon: FakeMastodon
) -> None:
    # Given a collection of bob then alice, one at a time, with alice's statuses hanging
    service = await start_service(collect_concurrency=1)
    mastodon.script("/api/v1/accounts/1/statuses", HANG)
    task = await service.rpc.create(
        "collect_platform_data",
        {"platform": "mastodon", "entity_ids": ["bob", "alice"],
         "options": {"base_url": mastodon.base_url}},
    )  # fmt: skip
    await mastodon.arrival("/api/v1/accounts/1/statuses")
    running = service.manager._live[task["task_id"]].aio_task
    assert running is not None
    # When it is cancelled mid-request
    cancelled = await service.rpc.cancel(task["task_id"])
    # Then the record says so at once, the coroutine has stopped, and bob's posts stay stored
    assert (cancelled["status"], cancelled["progress"]) == ("cancelled", {"done": 1, "total": 2})
    await asyncio.wait([running], timeout=5)
    assert running.cancelled()
    assert await service.rpc.content_count() == 3
    assert mastodon.paths()[-2:] == ["/api/v1/accounts/lookup", "/api/v1/accounts/1/statuses"]


async def test_shutdown_lets_a_collection_finish_before_closing_the_session(
    mastodon: FakeMastodon,
) -> None:
    # Given a running collection whose answer comes 0.3 s later
    mastodon.script("/api/v1/accounts/2/statuses", Fault(delay=0.3))
    app = create_app(Settings(workers=1, shutdown_grace=10))
    async with TestClient(TestServer(app)) as http:
        rpc = RpcClient("/rpc", session=http)
        task = await rpc.create(
            "collect_platform_data",
            {"platform": "mastodon", "entity_ids": ["bob"],
             "options": {"base_url": mastodon.base_url}},
        )  # fmt: skip
        await mastodon.arrival("/api/v1/accounts/2/statuses")
        client = app[HTTP_KEY]
    # When the app has shut down (inside the grace period)
    # Then the collection completed with the shared session, which is closed only now
    record = app[MANAGER_KEY].get(task["task_id"])
    assert (record.status.value, record.result["total_stored"]) == ("completed", 3)
    assert client.session.closed


# --- the file platform -----------------------------------------------------------------------


async def test_file_platform_reads_the_import_folder_only(
    start_service: StartService, tmp_path: Path
) -> None:
    # Given an import folder that is a link to the shared data, and a file beside it
    (tmp_path / "import").symlink_to(SHARED_DATA, target_is_directory=True)
    (tmp_path / "secret.jsonl").write_text('{"id": "s", "text": "secret"}\n')
    service = await start_service(import_dir=tmp_path / "import")
    # When the submissions dump and two paths outside the folder are collected
    task = await service.rpc.run(
        "collect_platform_data",
        {"platform": "file",
         "entity_ids": [SUBMISSIONS, "../secret.jsonl", str(tmp_path / "secret.jsonl")]},
    )  # fmt: skip
    # Then the dump is stored, and only the paths outside fail, with PathNotAllowed
    assert task["status"] == "completed"
    result = task["result"]
    assert result["entities"][SUBMISSIONS]["stored"] == 1903
    assert [(e["entity_id"], e["type"]) for e in result["errors"]] == [
        ("../secret.jsonl", "PathNotAllowed"),
        (str(tmp_path / "secret.jsonl"), "PathNotAllowed"),
    ]
    assert await service.rpc.content_count(platform="reddit") == 1903
    [submission] = await service.rpc.content_get(["reddit:t3_yp5dti"])
    assert submission["author"]["handle"] == "AutoNewspaperAdmin"
    # And a collection of only outside paths fails as a whole
    outside = await service.rpc.run(
        "collect_platform_data", {"platform": "file", "entity_ids": ["../secret.jsonl"]}
    )
    assert outside["status"] == "failed"
    assert outside["error"]["type"] == "PathNotAllowed"


# --- settings --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"RPCSVC_HTTP_TIMEOUT": "0"}, "RPCSVC_HTTP_TIMEOUT='0': must be a number > 0"),
        ({"RPCSVC_HTTP_MAX_ATTEMPTS": "0"}, "RPCSVC_HTTP_MAX_ATTEMPTS='0': must be at least 1"),
        ({"RPCSVC_MAX_RATE_LIMIT_WAIT": "-1"},
         "RPCSVC_MAX_RATE_LIMIT_WAIT='-1': must be a number >= 0"),
        ({"RPCSVC_MASTODON_URL": "mastodon.social"},
         "RPCSVC_MASTODON_URL='mastodon.social': must be an http(s) URL"),
        ({"RPCSVC_COLLECT_CONCURRENCY": "many"}, "RPCSVC_COLLECT_CONCURRENCY='many': not a valid"),
    ],
)  # fmt: skip
def test_collection_settings_name_bad_values(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        Settings.from_env(env)
    assert str(info.value).startswith(message)
