"""generate_report through the real server, and GET /reports/{task_id} serving the body; the
HTML one is opened in headless Chromium, as a person would open it."""

from __future__ import annotations

import asyncio
import gzip
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from selenium import webdriver

from rpcsvc import errors
from rpcsvc.client import RpcClient
from tests.browser import headless_chromium
from tests.conftest import Service, StartService

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
COMMENTS = DATA / "reddit_comment_2022-11-08.json.gz"

pytestmark = pytest.mark.skipif(not COMMENTS.exists(), reason="shared data not present")


@pytest.fixture(scope="module")
def comments() -> list[dict[str, Any]]:
    with gzip.open(COMMENTS, "rt", encoding="utf-8") as f:
        return [json.loads(line) for _, line in zip(range(3000), f, strict=False)]


@pytest.fixture(scope="module")
def browser() -> Iterator[webdriver.Chrome]:
    with headless_chromium(width=1200, height=900) as driver:
        yield driver


async def _analyses(service: Service, comments: list[dict[str, Any]]) -> tuple[Any, Any]:
    posts = [{"id": c["id"], "text": c["body"], "created_at": c["created_utc"]} for c in comments]
    content = await service.rpc.run("analyze_content", {"posts": posts, "k": 4})
    graph = await service.rpc.run("analyze_relationships", {"posts": comments})
    assert content["status"] == graph["status"] == "completed"
    return content, graph


async def _get(service: Service, url: str, **kwargs: Any) -> tuple[int, str, bytes]:
    response = await service.http.get(url, **kwargs)
    return response.status, response.headers.get("Content-Type", ""), await response.read()


async def test_report_of_finished_tasks_in_three_formats(
    service: Service, comments: list[dict[str, Any]]
) -> None:
    # Given a finished content analysis and a finished relationship analysis
    content, graph = await _analyses(service, comments)
    task_ids = [content["task_id"], graph["task_id"]]
    # When a report is made of them in each format
    made = {}
    for fmt in ("json", "markdown", "html"):
        params = {"task_ids": task_ids, "format": fmt, "title": "Election day"}
        made[fmt] = await service.rpc.run("generate_report", params)
    # Then each record describes a small result and where the body is served
    bodies = {}
    for fmt, task in made.items():
        assert task["status"] == "completed", task["error"]
        url = f"/reports/{task['task_id']}"
        status, content_type, body = await _get(service, url)
        expected_type = {
            "json": "application/json",
            "markdown": "text/markdown; charset=utf-8",
            "html": "text/html; charset=utf-8",
        }[fmt]
        assert task["result"] == {
            "format": fmt,
            "content_type": expected_type,
            "size": len(body),
            "title": "Election day",
            "url": url,
            "sections": [
                "sentiment", "topics", "hashtags", "entities", "keywords", "relationships"
            ],
        }  # fmt: skip
        assert (status, content_type) == (200, expected_type)
        bodies[fmt] = body
    # And the JSON report holds the analyses' own figures
    data = orjson.loads(bodies["json"])
    summary = content["result"]["summary"]
    assert data["sentiment"]["labels"] == summary["labels"]
    assert data["sentiment"]["histogram"] == content["result"]["sentiment"]["histogram"]
    assert data["topics"] == content["result"]["topics"]
    assert data["relationships"] == graph["result"]
    assert data["source"].startswith(f"analyze_content task {content['task_id']}; ")
    # And the Markdown one reads as a document with the same figures
    markdown = bodies["markdown"].decode()
    assert markdown.startswith("# Election day\n")
    assert f"- **posts**: {summary['count']:,}" in markdown
    for heading in ("## Topics", "## Key phrases", "## Interaction network"):
        assert f"\n{heading}\n" in markdown
    assert ", ".join(content["result"]["topics"][0]["terms"][:8]) in markdown
    # And the HTML one is self-contained: inline charts, no scripts, nothing fetched
    page = bodies["html"].decode()
    assert page.count("<svg") >= 5
    assert "<script" not in page and "src=" not in page and "@import" not in page


async def test_report_from_posts_chunked_or_not(
    start_service: StartService, comments: list[dict[str, Any]]
) -> None:
    # Given the same 1,500 comments on a one-chunk server and on one of 400-post chunks
    params = {"posts": comments[:1500], "format": "json", "k": 3}
    reports = []
    for chunk_size in (5000, 400):
        service = await start_service(chunk_size=chunk_size)
        # When each makes a JSON report of the posts themselves
        task = await service.rpc.run("generate_report", params)
        assert task["status"] == "completed", task["error"]
        status, _, body = await _get(service, task["result"]["url"])
        assert status == 200
        reports.append(orjson.loads(body))
    # Then the reports agree (the chunked one merged its chunks in the pool)
    one, chunked = reports
    assert one.pop("source").startswith("1,500 posts given inline; generated ")
    chunked.pop("source")
    assert one == chunked
    assert one["sentiment"]["count"] == 1500
    assert len(one["topics"]) == 3
    assert one["relationships"]["summary"]["posts"] == 1500


async def test_report_errors(service: Service) -> None:
    # Given an unknown id, a task that is not a report, and a report stuck behind busy workers
    unknown = "00000000-0000-4000-8000-000000000000"
    other = await service.rpc.run("debug.echo", {"value": 1})
    blockers = [await service.rpc.create("debug.sleep", {"seconds": 30}) for _ in range(2)]
    pending = await service.rpc.create("generate_report", {"posts": [{"text": "hello"}]})
    # Then GET /reports answers each with a clear JSON error
    cases = [
        (unknown, 404, "TaskNotFound"),
        (other["task_id"], 404, "NotAReport"),
        (pending["task_id"], 409, "TaskNotFinished"),
    ]
    for task_id, status, kind in cases:
        got, content_type, body = await _get(service, f"/reports/{task_id}")
        assert (got, content_type) == (status, "application/json; charset=utf-8")
        assert orjson.loads(body)["error"]["type"] == kind
    # And a cancelled report has nothing to serve
    await service.rpc.cancel(pending["task_id"])
    got, _, body = await _get(service, f"/reports/{pending['task_id']}")
    assert got == 409
    assert orjson.loads(body)["error"] == {
        "type": "ReportFailed",
        "message": f"task {pending['task_id']} is cancelled: no report to serve",
        "status": "cancelled",
    }
    # And a report of an analysis not yet done is refused at creation, naming the id
    waiting = await service.rpc.create("analyze_content", {"texts": ["queued"]})
    with pytest.raises(errors.TaskNotFinished) as info:
        await service.rpc.create("generate_report", {"task_ids": [waiting["task_id"]]})
    assert info.value.data == {"field": "task_ids[0]", "status": "pending"}
    with pytest.raises(errors.InvalidParams) as bad:
        await service.rpc.create("generate_report", {"task_ids": [other["task_id"]]})
    assert bad.value.field == "task_ids[0]"
    with pytest.raises(errors.TaskNotFound):
        await service.rpc.create("generate_report", {"task_ids": [unknown]})
    for blocker in blockers:
        await service.rpc.cancel(blocker["task_id"])


async def test_report_needs_the_token_when_one_is_set(start_service: StartService) -> None:
    service = await start_service(token="s3cret")
    rpc = RpcClient("/rpc", session=service.http, token="s3cret")
    params = {"posts": [{"text": "Vote!"}], "format": "markdown"}
    task = await rpc.run("generate_report", params)
    url = task["result"]["url"]
    assert (await _get(service, url))[0] == 401
    authorized = {"Authorization": "Bearer s3cret"}
    status, content_type, body = await _get(service, url, headers=authorized)
    assert (status, content_type) == (200, "text/markdown; charset=utf-8")
    assert body.startswith(b"# Analysis report\n")


async def test_html_report_in_a_browser(
    service: Service, comments: list[dict[str, Any]], browser: webdriver.Chrome
) -> None:
    # Given an HTML report of the comments, their analyses made by the report itself
    task = await service.rpc.run(
        "generate_report", {"posts": comments[:1000], "title": "Election day in 1,000 comments"}
    )
    assert task["status"] == "completed", task["error"]
    # When a person opens its URL
    url = str(service.http.make_url(task["result"]["url"]))
    await asyncio.to_thread(browser.get, url)
    page = await asyncio.to_thread(
        browser.execute_script,
        """return {
            title: document.title,
            h2: [...document.querySelectorAll('h2')].map(h => h.textContent),
            charts: [...document.querySelectorAll('svg')].map(s => {
                const box = s.getBoundingClientRect();
                return [Math.round(box.width), Math.round(box.height)];
            }),
            fetched: performance.getEntriesByType('resource').map(r => r.name),
        }""",
    )
    # Then it shows every section, with charts drawn at a readable size, fetching nothing
    assert page["title"] == "Election day in 1,000 comments"
    assert page["h2"] == [
        "Sentiment", "Topics", "Key phrases", "Hashtags", "Who and what is talked about",
        "Interaction network",
    ]  # fmt: skip
    assert len(page["charts"]) >= 6
    assert all(width >= 400 and height >= 150 for width, height in page["charts"])
    assert page["fetched"] == []
    log = await asyncio.to_thread(browser.get_log, "browser")
    assert [entry for entry in log if entry["level"] == "SEVERE"] == []
