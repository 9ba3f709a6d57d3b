"""analyze_content and analyze_relationships through the real server (real worker processes),
on the human-rated tweets and the real Reddit comments of shared/data."""

from __future__ import annotations

import gzip
import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.metrics import f1_score

from rpcsvc import errors
from rpcsvc.registry import Call
from rpcsvc.task import Task
from tests.conftest import Service, StartService
from tests.test_metrics import counters, scrape
from workers import content
from workers.collection.reddit import normalise_thing

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
GROUND_TRUTH = DATA / "vader_tweets_groundtruth.tsv"
COMMENTS = DATA / "reddit_comment_2022-11-08.json.gz"
MARGIN = 0.002  # figures of tests/test_sentiment_groundtruth.py, measured in one process

pytestmark = pytest.mark.skipif(not COMMENTS.exists(), reason="shared data not present")


@pytest.fixture(scope="module")
def comments() -> list[dict[str, Any]]:
    with gzip.open(COMMENTS, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def _posts(comments: list[dict[str, Any]], n: int) -> list[dict[str, Any]]:
    return [
        {"id": c["id"], "text": c["body"], "created_at": c["created_utc"]} for c in comments[:n]
    ]


def _classes(values: np.ndarray) -> np.ndarray:
    return np.where(values >= 0.05, 1, np.where(values <= -0.05, -1, 0))


async def test_vader_ground_truth_through_the_server(service: Service) -> None:
    # Given the 4,200 human-rated tweets of the VADER paper
    texts, human = [], []
    for line in GROUND_TRUTH.read_text(encoding="utf-8").splitlines():
        _, mean, text = line.split("\t", 2)
        texts.append(text)
        human.append(float(mean) / 4)  # -4..+4 -> -1..+1
    # When they are analysed in one task (three chunks of 2,000 across both workers)
    params = {"texts": texts, "analysis_types": ["sentiment"]}
    task = await service.rpc.run("analyze_content", params)
    # Then the compound scores agree with the raters as well as in one process
    assert task["status"] == "completed", task["error"]
    assert task["progress"] == {"done": 4200, "total": 4200}
    compound = np.array([row["compound"] for row in task["result"]["posts"]])
    truth, predicted = _classes(np.array(human)), _classes(compound)
    assert float(np.corrcoef(compound, human)[0, 1]) >= 0.8773 - MARGIN
    assert f1_score(truth, predicted, average="weighted") >= 0.9004 - MARGIN
    assert f1_score(truth, predicted, average="macro") >= 0.7434 - MARGIN
    # And the summary counts the rows' labels
    labels = Counter(row["label"] for row in task["result"]["posts"])
    assert task["result"]["summary"]["labels"] == {
        name: labels[name] for name in ("positive", "neutral", "negative")
    }


async def test_topics_entities_keywords_on_reddit_posts(
    service: Service, comments: list[dict[str, Any]]
) -> None:
    # Given 3,000 real comments from election day 2022
    posts = _posts(comments, 3000)
    # When all four analyses run with five topics
    task = await service.rpc.run("analyze_content", {"posts": posts, "k": 5})
    assert task["status"] == "completed", task["error"]
    result = task["result"]
    rows = result["posts"]
    assert set(result) == {
        "posts", "summary", "sentiment", "topics", "hashtags", "entities", "keywords"
    }  # fmt: skip
    assert [row["id"] for row in rows] == [p["id"] for p in posts]
    # Then there are five topics, numbered by size, whose sizes count the rows' topics
    topics = result["topics"]
    assert [t["id"] for t in topics] == [0, 1, 2, 3, 4]
    sizes = Counter(row["topic"] for row in rows if row["topic"] is not None)
    assert [t["size"] for t in topics] == [sizes[t["id"]] for t in topics]
    assert [t["size"] for t in topics] == sorted((t["size"] for t in topics), reverse=True)
    assert sum(t["weight"] for t in topics) == pytest.approx(1.0, abs=0.001)
    # and the threads of that day are among them, told by their leading terms: mail-in
    # ballots, the "red wave" and "vote blue no matter who"
    leading = [set(t["terms"][:3]) for t in topics]
    assert any({"mail", "ballots"} <= terms for terms in leading), topics
    assert any({"red", "wave"} <= terms for terms in leading), topics
    assert any({"blue", "matter"} <= terms for terms in leading), topics
    # and a topic's posts use its words: most posts of the mail topic speak of mail or ballots
    mail_topic = next(t["id"] for t in topics if t["terms"][0] in ("mail", "ballots"))
    texts = [
        p["text"].lower() for p, r in zip(posts, rows, strict=True) if r["topic"] == mail_topic
    ]
    assert sum("mail" in text or "ballot" in text for text in texts) > 0.8 * len(texts)
    # Then the parties are the most named organisations and each row lists its own entities
    names = {n["text"]: n for n in result["entities"]["names"]}
    assert names["Republican Party"]["kind"] == "org"
    assert names["Democratic Party"]["kind"] == "org"
    with_gop = [
        r for r in rows if {"text": "Republican Party", "kind": "org"} in r["entities"]["names"]
    ]
    assert len(with_gop) == names["Republican Party"]["count"]
    # And hashtag counts are posts using the tag, in any case
    for tag in result["hashtags"][:3]:
        pattern = re.compile(re.escape(tag["text"]) + r"(?!\w)", re.IGNORECASE)
        assert sum(bool(pattern.search(p["text"])) for p in posts) == tag["count"], tag
    # And key phrases are phrases the posts use, the most common first
    phrases = [k["phrase"] for k in result["keywords"]]
    assert phrases[0] == "vote"
    assert result["keywords"][0]["score"] == 1.0
    for keyword in result["keywords"][:5]:
        used = sum(keyword["phrase"] in p["text"].lower() for p in posts)
        assert used >= keyword["posts"] > 20, keyword
    # And the sentiment course has the day's hours, adding up to the posts
    by_hour = result["sentiment"]["by_hour"]
    assert sum(h["count"] for h in by_hour) == 3000
    assert all(h["period"].startswith("2022-11-08T") for h in by_hour)


async def test_chunked_task_gives_the_one_chunk_result(
    start_service: StartService, comments: list[dict[str, Any]]
) -> None:
    # Given the same 2,500 posts on a server that takes them in one chunk and on one that
    # splits them into chunks of 300 (nine chunks and the whole-set step)
    posts = _posts(comments, 2500)
    params = {"posts": posts, "k": 4}
    whole_server = await start_service(chunk_size=5000)
    chunked_server = await start_service(chunk_size=300)
    # When both analyse them
    whole = await whole_server.rpc.run("analyze_content", params)
    chunked = await chunked_server.rpc.run("analyze_content", params)
    # Then the results are identical, rows and aggregates alike
    assert whole["status"] == chunked["status"] == "completed"
    assert whole["progress"] is None  # one pool call
    assert chunked["progress"] == {"done": 5000, "total": 5000}  # chunks + whole-set pass
    assert chunked["result"] == whole["result"]
    # And detail "summary" gives the same aggregates without the rows
    summary = await chunked_server.rpc.run("analyze_content", {**params, "detail": "summary"})
    assert summary["result"] == {k: v for k, v in whole["result"].items() if k != "posts"}
    # And without topics (the chunks then send their rows as JSON, joined as they are) too
    untopical = {"posts": posts, "analysis_types": ["sentiment", "entities", "keywords"]}
    whole = await whole_server.rpc.run("analyze_content", untopical)
    chunked = await chunked_server.rpc.run("analyze_content", untopical)
    assert chunked["progress"] == {"done": 5000, "total": 5000}
    assert len(chunked["result"]["posts"]) == 2500
    assert chunked["result"] == whole["result"]


async def test_relationships_on_the_reddit_comments(
    service: Service, comments: list[dict[str, Any]]
) -> None:
    # Given the 10,355 comments and the replies among them counted here independently
    by_id = {c["id"]: c for c in comments}
    replies = Counter()
    for c in comments:
        parent = by_id.get(c["parent_id"].split("_", 1)[1])
        if parent is not None and parent["author"].lower() != c["author"].lower():
            replies[(c["author"].lower(), parent["author"].lower())] += 1
    self_replies = sum(
        1 for c in comments
        if (p := by_id.get(c["parent_id"].split("_", 1)[1]))
        and p["author"].lower() == c["author"].lower()
    )  # fmt: skip
    # When the relationships are analysed with room for the whole graph
    task = await service.rpc.run(
        "analyze_relationships", {"posts": comments, "max_graph_nodes": 5000}
    )
    assert task["status"] == "completed", task["error"]
    result = task["result"]
    summary = result["summary"]
    # Then the reply edges are the ones counted here
    assert summary["posts"] == 10_355
    assert summary["authors"] == len({c["author"].lower() for c in comments})
    assert summary["replies"] == sum(replies.values())
    assert summary["skipped"]["self"] >= self_replies  # plus self-mentions
    links = {(e["source"], e["target"]): e for e in result["graph"]["links"]}
    assert {pair: e["replies"] for pair, e in links.items() if e["replies"]} == dict(replies)
    assert result["graph"]["graph"]["truncated"] is False
    assert summary["interactions"] == summary["replies"] + summary["mentions"]
    # And the most replied-to actor by in-degree received the most interactions
    received = Counter()
    for (_, target), e in links.items():
        received[target] += e["weight"]
    top = result["central"]["in_degree"][0]
    assert top["interactions"] == max(received.values()) == received[top["key"]]
    # And communities partition the graph's actors
    assert sum(c["size"] for c in result["communities"]["items"]) <= summary["nodes"]
    assert result["communities"]["count"] >= 10


async def test_relationships_from_the_content_store_match_inline_posts(
    service: Service, comments: list[dict[str, Any]]
) -> None:
    # Given 3,000 comments stored as normalised posts (replies point at content ids)
    sample = comments[:3000]
    stored = [normalise_thing(c, include_raw=False, unescape=True) for c in sample]
    added = await service.rpc.content_add(stored)
    # When their relationships are analysed by content id and from the raw comments
    by_id = await service.rpc.run("analyze_relationships", {"content_ids": added["content_ids"]})
    inline = await service.rpc.run("analyze_relationships", {"posts": sample})
    # Then both give the same graph
    assert by_id["status"] == inline["status"] == "completed"
    assert by_id["result"]["summary"]["replies"] > 0
    assert by_id["result"] == inline["result"]
    # And analyze_content takes the same content ids, rows keyed by them
    analysed = await service.rpc.run(
        "analyze_content",
        {"content_ids": added["content_ids"][:50], "analysis_types": ["sentiment", "entities"]},
    )
    assert [r["id"] for r in analysed["result"]["posts"]] == added["content_ids"][:50]


BAD_PARAMS = [
    ("analyze_content", {"texts": ["a"], "k": 0}, "params.k", "must be bigger than or equal to 1"),
    ("analyze_content", {"texts": ["a"], "top_n": "5"}, "params.top_n", "must be integer"),
    (
        "analyze_content",
        {"texts": ["a"], "analysis_types": []},
        "params.analysis_types",
        "must contain at least 1 items",
    ),
    ("analyze_relationships", {"posts": [1]}, "params.posts[0]", "must be object"),
    (
        "analyze_relationships",
        {"posts": [], "max_graph_nodes": 0},
        "params.max_graph_nodes",
        "must be bigger than or equal to 1",
    ),
    ("analyze_relationships", {}, "params", "give exactly one of posts, content_ids"),
    (
        "generate_report",
        {"posts": [], "format": "pdf"},
        "params.format",
        "must be one of ['html', 'markdown', 'json']",
    ),
    (
        "generate_report",
        {"posts": [], "task_ids": ["x"]},
        "params",
        "give exactly one of task_ids, posts, content_ids",
    ),
]


@pytest.mark.parametrize(("task_type", "params", "field", "problem"), BAD_PARAMS)
async def test_bad_params_name_the_field(
    service: Service, task_type: str, params: dict[str, Any], field: str, problem: str
) -> None:
    with pytest.raises(errors.InvalidParams) as info:
        await service.rpc.create(task_type, params)
    assert (info.value.field, info.value.problem) == (field, problem)


async def test_cancelled_bulk_analysis_runs_no_further_chunk(
    start_service: StartService, comments: list[dict[str, Any]]
) -> None:
    # Given a server that splits 10,000 posts into 20 chunks and a whole-set step, and a
    # record of every call it hands to the pool
    service = await start_service(chunk_size=500)
    executor = service.manager.executor
    handed: list[Call] = []
    submit = executor.submit

    def recording_submit(calls: list[Call]) -> Any:
        handed.extend(calls)
        return submit(calls)

    executor.submit = recording_submit  # type: ignore[method-assign]
    posts = [{"id": i, "text": comments[i % len(comments)]["body"]} for i in range(10_000)]
    task = await service.rpc.create("analyze_content", {"posts": posts, "detail": "summary"})
    # When the task is cancelled as soon as its first chunk has been counted
    handed_at_cancel: list[int] = []

    def cancel_on_first_progress(record: Task, previous: object) -> None:
        progress = record.progress or {}
        if record.task_id == task["task_id"] and progress.get("done") and not handed_at_cancel:
            handed_at_cancel.append(len(handed))
            service.manager.cancel(record.task_id)

    # (first among the listeners: the others then see the cancel, not the stale progress)
    service.manager.listeners.insert(0, cancel_on_first_progress)
    cancelled = await service.rpc.wait(task["task_id"])
    # Then it ends cancelled, part done
    assert cancelled["status"] == "cancelled"
    assert 0 < cancelled["progress"]["done"] < cancelled["progress"]["total"] == 20_000
    # And once the pool has served another task, no chunk of it was handed out after the cancel
    after = await service.rpc.run("analyze_content", {"texts": ["still serving"]})
    assert after["status"] == "completed"
    ours = [c for c in handed if c.fn in (content.analyze_chunk, content.analyze_whole_set)]
    assert handed_at_cancel == [2]  # the whole-set step and the first chunk, one per worker
    # And the metrics count its end once, and nothing as still running
    samples = counters(await scrape(service))
    assert samples["rpcsvc_tasks_finished_total{status=cancelled,type=analyze_content}"] == 1
    assert samples["rpcsvc_tasks_running{type=analyze_content}"] == 0
    assert len(ours) == 2
    assert not service.manager.jobs_of(task["task_id"])
