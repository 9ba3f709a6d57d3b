"""The task.* methods end to end: real server, real worker processes, the project's client."""

from __future__ import annotations

import asyncio
import gc
import tracemalloc
from datetime import datetime

import pytest
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from rpcsvc import errors
from tests.conftest import Service, StartService

TEXTS = ["I love this candidate!", "This policy is a disaster.", "The vote is on Tuesday."]
SENTIMENT_ONLY = {"analysis_types": ["sentiment"]}


def _expected_rows(texts: list[str], ids: list[object]) -> list[dict[str, object]]:
    analyzer = SentimentIntensityAnalyzer()
    rows = []
    for post_id, text in zip(ids, texts, strict=True):
        s = analyzer.polarity_scores(text)
        label = (
            "positive"
            if s["compound"] >= 0.05
            else "negative"
            if s["compound"] <= -0.05
            else "neutral"
        )
        rows.append(
            {
                "id": post_id,
                "compound": s["compound"],
                "pos": s["pos"],
                "neu": s["neu"],
                "neg": s["neg"],
                "label": label,
            }
        )
    return rows


async def test_analyze_content_sentiment_whole_record(service: Service) -> None:
    # Given three texts
    params = {"texts": TEXTS, "analysis_types": ["sentiment"]}
    created = await service.rpc.create("analyze_content", params, priority="high")
    assert created["status"] == "pending"
    # When the task is waited for
    done = await service.rpc.wait(created["task_id"], timeout=30)
    # Then the whole record is as documented
    rows = _expected_rows(TEXTS, [0, 1, 2])
    compounds = [r["compound"] for r in rows]
    assert done == {
        "task_id": created["task_id"],
        "type": "analyze_content",
        "status": "completed",
        "priority": "high",
        "params": {**params, "detail": "posts", "k": None, "top_n": 20, "seed": 0},
        "timeout": None,
        "created_at": created["created_at"],
        "started_at": done["started_at"],
        "finished_at": done["finished_at"],
        "progress": None,
        "error": None,
        "result": {
            "posts": rows,
            "summary": {
                "count": 3,
                "mean_compound": round(sum(compounds) / 3, 4),
                "labels": {"positive": 1, "neutral": 1, "negative": 1},
            },
            "sentiment": {
                "histogram": {
                    "edges": [round(-1 + k / 10, 2) for k in range(21)],
                    "counts": [
                        sum(1 for c in compounds if min(19, int((c + 1) * 10)) == k)
                        for k in range(20)
                    ],
                },
                "by_day": [],  # the texts carry no time
                "by_hour": [],
            },
        },
    }
    created_at, started_at, finished_at = (
        datetime.fromisoformat(done[k]) for k in ("created_at", "started_at", "finished_at")
    )
    assert created_at <= started_at <= finished_at
    assert done["created_at"].endswith("Z")


async def test_posts_keep_their_ids_and_summary_detail_drops_rows(service: Service) -> None:
    posts = [{"id": "a1", "text": TEXTS[0], "author": "x"}, {"id": 7, "text": TEXTS[1]}]
    only = ["sentiment"]
    full = await service.rpc.run("analyze_content", {"posts": posts, "analysis_types": only})
    summary = await service.rpc.run(
        "analyze_content", {"posts": posts, "analysis_types": only, "detail": "summary"}
    )
    assert full["result"]["posts"] == _expected_rows(TEXTS[:2], ["a1", 7])
    assert summary["result"] == {k: v for k, v in full["result"].items() if k != "posts"}


async def test_bulk_task_is_chunked_with_progress(start_service: StartService) -> None:
    # Given 10,000 texts and chunks of 1,000
    service = await start_service(chunk_size=1000)
    texts = [TEXTS[i % 3] + f" #{i}" for i in range(10_000)]
    # When analysed in one task
    params = {"texts": texts, "analysis_types": ["sentiment"]}
    task = await service.rpc.run("analyze_content", params)
    # Then every text has its row, in order, and progress counted every post
    assert task["status"] == "completed"
    assert task["progress"] == {"done": 10_000, "total": 10_000}
    assert task["params"]["texts"] == {"count": 10_000}
    rows = task["result"]["posts"]
    assert [r["id"] for r in rows] == list(range(10_000))
    assert rows[:3] == _expected_rows(texts[:3], [0, 1, 2])
    assert task["result"]["summary"]["count"] == 10_000
    assert sum(task["result"]["summary"]["labels"].values()) == 10_000


async def test_priorities_critical_starts_before_earlier_lows(service: Service) -> None:
    # Given a pool whose two workers are busy
    blockers = [await service.rpc.create("debug.sleep", {"seconds": 0.5}) for _ in range(2)]
    # When fifty low tasks and then one critical task are created
    lows = await service.rpc.batch(
        [
            (
                "task.create",
                {"type": "analyze_content", "params": {"texts": ["ok"]}, "priority": "low"},
            )
        ]
        * 50
    )
    critical = await service.rpc.create(
        "analyze_content", {"texts": ["urgent"]}, priority="critical"
    )
    # Then the critical task starts no later than any low one, and lows keep their order
    critical = await service.rpc.wait(critical["task_id"])
    lows = [await service.rpc.wait(t["task_id"]) for t in lows]
    low_starts = [datetime.fromisoformat(t["started_at"]) for t in lows]
    assert datetime.fromisoformat(critical["started_at"]) <= min(low_starts)
    assert low_starts == sorted(low_starts)
    for blocker in blockers:
        assert (await service.rpc.wait(blocker["task_id"]))["status"] == "completed"


async def test_cancel_pending_task_never_runs(service: Service) -> None:
    blockers = [await service.rpc.create("debug.sleep", {"seconds": 0.3}) for _ in range(2)]
    pending = await service.rpc.create("analyze_content", {"texts": ["never"]})
    cancelled = await service.rpc.cancel(pending["task_id"])
    assert cancelled["status"] == "cancelled"
    assert cancelled["started_at"] is None
    for blocker in blockers:
        await service.rpc.wait(blocker["task_id"])
    after = await service.rpc.status(pending["task_id"])
    assert after == {**cancelled, "result": None}
    assert after["started_at"] is None


async def test_cancel_running_cpu_task_frees_its_worker(service: Service) -> None:
    # Given a long CPU task that is running
    task = await service.rpc.create("debug.sleep", {"seconds": 60})
    assert (await service.rpc.status(task["task_id"]))["status"] == "running"
    # When it is cancelled
    cancelled = await service.rpc.cancel(task["task_id"])
    # Then it is cancelled at once and the pool keeps serving new work on both workers
    assert cancelled["status"] == "cancelled"
    followers = [await service.rpc.create("debug.sleep", {"seconds": 0}) for _ in range(2)]
    for follower in followers:
        assert (await service.rpc.wait(follower["task_id"], 20))["status"] == "completed"
    assert (await service.rpc.status(task["task_id"]))["status"] == "cancelled"


async def test_cancel_running_io_task(service: Service) -> None:
    task = await service.rpc.create("debug.echo", {"value": 1, "seconds": 60})
    assert (await service.rpc.status(task["task_id"]))["status"] == "running"
    cancelled = await service.rpc.cancel(task["task_id"])
    assert cancelled["status"] == "cancelled"
    assert cancelled["result"] is None


async def test_cancel_finished_task_changes_nothing(service: Service) -> None:
    done = await service.rpc.run("debug.echo", {"value": {"x": [1, 2]}})
    assert done["result"] == {"x": [1, 2]}
    assert await service.rpc.cancel(done["task_id"]) == done
    assert await service.rpc.status(done["task_id"]) == done


@pytest.mark.parametrize("task_type", ["debug.sleep", "debug.echo"])
async def test_timeout_fails_the_task(service: Service, task_type: str) -> None:
    params = {"seconds": 30} if task_type == "debug.sleep" else {"seconds": 30, "value": 1}
    task = await service.rpc.create(task_type, params, timeout=0.3)
    done = await service.rpc.wait(task["task_id"], 10)
    assert done["status"] == "failed"
    assert done["error"] == {"type": "TaskTimeout", "message": "Task ran past its timeout of 0.3 s"}
    elapsed = datetime.fromisoformat(done["finished_at"]) - datetime.fromisoformat(
        done["started_at"]
    )
    assert 0.3 <= elapsed.total_seconds() < 5


async def test_failing_task_does_not_disturb_others(service: Service) -> None:
    results = await service.rpc.batch(
        [
            ("task.create", {"type": "debug.fail", "params": {"message": "bad data in post 3"}}),
            ("task.create", {"type": "analyze_content", "params": {"texts": TEXTS}}),
        ]
    )
    failed = await service.rpc.wait(results[0]["task_id"])
    ok = await service.rpc.wait(results[1]["task_id"])
    assert failed["status"] == "failed"
    assert failed["error"] == {"type": "ValueError", "message": "bad data in post 3"}
    assert failed["result"] is None
    assert ok["status"] == "completed"


async def test_wait_returns_current_record_at_its_timeout(service: Service) -> None:
    task = await service.rpc.create("debug.sleep", {"seconds": 2})
    waited = await service.rpc.wait(task["task_id"], timeout=0.1)
    assert waited["status"] == "running"
    assert waited["finished_at"] is None
    await service.rpc.cancel(task["task_id"])


async def test_waits_in_one_batch_each_end_on_their_own(service: Service) -> None:
    # Given a running task
    task = await service.rpc.create("debug.sleep", {"seconds": 30})
    task_id = task["task_id"]
    # When one batch waits for it with two short timeouts
    short = await service.rpc.batch(
        [("task.wait", {"task_id": task_id, "timeout": t}) for t in (0.05, 0.1)]
    )
    # Then both answer the running record, and nobody is left waiting on the server
    assert [r["status"] for r in short] == ["running", "running"]
    assert service.manager.get(task_id).waiting == 0
    # When one batch waits for it, cancels it, and waits again
    answers = await service.rpc.batch(
        [
            ("task.wait", {"task_id": task_id, "timeout": 30}),
            ("task.cancel", {"task_id": task_id}),
            ("task.wait", {"task_id": task_id, "timeout": 30}),
        ]
    )
    # Then the first wait ends with the cancel, and all three answer the same final record
    assert answers[0] == answers[1] == answers[2]
    assert answers[0]["status"] == "cancelled"
    assert service.manager.get(task_id).waiting == 0


async def test_finished_tasks_hold_little_memory(service: Service) -> None:
    # Given a warmed-up service and 2,000 distinct texts of 200 characters
    texts = [f"{i:05d} " + "a fair vote, a good debate. " * 7 for i in range(2000)]
    only = {"analysis_types": ["sentiment"]}
    await service.rpc.batch(
        [("task.create", {"type": "analyze_content", "params": {"texts": [t]}}) for t in TEXTS]
    )
    gc.collect()
    gc.disable()  # to count what only the cycle collector would free
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        # When each is analysed by a task of its own, created and waited for in batches
        for start in range(0, len(texts), 500):
            created = await service.rpc.batch(
                [
                    (
                        "task.create",
                        {"type": "analyze_content", "params": {"texts": [t], **only}},
                    )
                    for t in texts[start : start + 500]
                ]
            )
            done = await service.rpc.batch(
                [("task.wait", {"task_id": c["task_id"], "timeout": 60}) for c in created]
            )
            assert {d["status"] for d in done} == {"completed"}
        del created, done
        cyclic = gc.collect() / len(texts)
        held = (tracemalloc.get_traced_memory()[0] - before) / len(texts)
    finally:
        tracemalloc.stop()
        gc.enable()
    # Then a finished task holds under 6 KiB (4.5 KiB measured): its result is kept only in
    # its record's JSON (the result's Python objects as well: 7.3 KiB), a copy of exactly its
    # length (orjson's own bytes object keeps its 8 KiB write buffer: 10.4 KiB)
    assert held < 6 * 1024
    # And little of what a task used waits for the cycle collector: 3 objects measured (the
    # closure fastjsonschema makes for uniqueItems); 17 when a pool job and its pool future
    # held each other, and with them every call and result of the job's tasks
    assert cyclic < 8


async def test_wait_rejects_timeout_over_300(service: Service) -> None:
    task = await service.rpc.create("debug.echo", {"value": 1})
    with pytest.raises(errors.InvalidParams) as info:
        await service.rpc.wait(task["task_id"], timeout=301)
    assert info.value.field == "timeout"
    assert info.value.problem == "must be smaller than or equal to 300"


async def test_list_is_newest_first_with_stable_cursor_paging(service: Service) -> None:
    # Given seven tasks of two types
    ids = []
    for i in range(7):
        task_type = "debug.echo" if i % 2 else "analyze_content"
        params = {"value": i} if i % 2 else {"texts": ["x"]}
        ids.append((await service.rpc.create(task_type, params))["task_id"])
    for task_id in ids:
        await service.rpc.wait(task_id)
    # When they are listed three at a time
    pages, cursor = [], None
    while True:
        page = await service.rpc.list(limit=3, cursor=cursor)
        pages.append([t["task_id"] for t in page["tasks"]])
        cursor = page["next_cursor"]
        if cursor is None:
            break
        # a task created between pages does not shift the next page
        await service.rpc.create("debug.echo", {"value": "late"})
    # Then every task appears once, newest first, in pages of three
    assert pages == [ids[::-1][0:3], ids[::-1][3:6], ids[::-1][6:7]]
    # And filters apply, and summaries carry no result
    analyses = await service.rpc.list(type="analyze_content", status="completed", limit=1000)
    assert [t["task_id"] for t in analyses["tasks"]] == [ids[6], ids[4], ids[2], ids[0]]
    assert all("result" not in t for t in analyses["tasks"])
    assert (await service.rpc.list(status="failed"))["tasks"] == []


async def test_list_rejects_bad_limit_and_cursor(service: Service) -> None:
    with pytest.raises(errors.InvalidParams) as info:
        await service.rpc.list(limit=1001)
    assert (info.value.field, info.value.problem) == (
        "limit",
        "must be smaller than or equal to 1000",
    )
    with pytest.raises(errors.InvalidParams) as info:
        await service.rpc.list(cursor="abc")
    assert (info.value.field, info.value.problem) == (
        "cursor",
        "is not a cursor returned by task.list",
    )


async def test_worker_crash_fails_only_that_task(service: Service) -> None:
    # Given a task that kills its worker process every time, next to a normal one
    crash = await service.rpc.create("debug.crash", {"exit_code": 3})
    normal = await service.rpc.create("analyze_content", {"texts": TEXTS})
    # Then the crashing task fails after its attempts, and the other completes
    crashed = await service.rpc.wait(crash["task_id"], 30)
    assert crashed["status"] == "failed"
    assert crashed["error"] == {
        "type": "WorkerDied",
        "message": "the worker process died while running this task (2 attempts)",
    }
    assert (await service.rpc.wait(normal["task_id"], 30))["status"] == "completed"
    # And the server still serves new work
    again = await service.rpc.run("analyze_content", {"texts": ["still alive"]})
    assert again["status"] == "completed"


async def test_many_clients_concurrently(service: Service) -> None:
    async def one(i: int) -> str:
        task = await service.rpc.run("analyze_content", {"texts": [f"text {i} is great"]})
        return str(task["status"])

    statuses = await asyncio.gather(*(one(i) for i in range(100)))
    assert statuses == ["completed"] * 100


async def test_python_api_schedule_methods(service: Service) -> None:
    # Given the TaskManager behind the running server, used as Python code embedding it would
    manager = service.manager
    posts = [
        {"id": "1", "author": "ann", "text": "Great debate tonight! @bob #midterms"},
        {
            "id": "2",
            "author": "bob",
            "text": "Awful answers @ann #midterms",
            "reply_to": {"post": "1"},
        },
    ]
    # When analysis, relationships and a report of both are scheduled
    content_id = manager.schedule_content_analysis(TEXTS, ["sentiment"])
    graph_id = manager.schedule_relationship_analysis(posts=posts)
    content = await manager.execute_task_sync(content_id)
    graph = await manager.execute_task_sync(graph_id)
    report_id = manager.schedule_report(task_ids=[content_id, graph_id], format="markdown")
    report = await manager.execute_task_sync(report_id)
    # Then each ran for real, and callers over JSON-RPC see the same tasks
    assert content["posts"] == _expected_rows(TEXTS, [0, 1, 2])
    assert graph["summary"]["authors"] == 2
    assert report["format"] == "markdown"
    assert report["url"] == f"/reports/{report_id}"
    statuses = [(await service.rpc.status(i))["status"] for i in (content_id, graph_id, report_id)]
    assert statuses == ["completed"] * 3


async def test_result_that_is_not_json_is_reported_when_read(service: Service) -> None:
    # Given a Python caller's task whose function returns what JSON cannot hold (a set), and a
    # waiter on its record from before it ran
    manager = service.manager
    odd = manager.create_task(frozenset, [[1, 2]])
    record = manager.get(odd).record_when_finished(30)
    # When it runs, beside an ordinary task
    assert await manager.execute_task_sync(odd) == frozenset({1, 2})
    ok = await service.rpc.run("analyze_content", {"texts": ["fine"], **SENTIMENT_ONLY})
    # Then it completed, with its Python result; its record cannot be made, which the waiter
    # and JSON-RPC readers are told (an internal error); the other task is unharmed
    assert manager.get(odd).status.value == "completed"
    with pytest.raises(TypeError):
        await record
    for method in ("task.status", "task.wait"):
        with pytest.raises(errors.InternalError):
            await service.rpc.call(method, task_id=odd)
    assert ok["status"] == "completed"


async def test_integral_floats_are_integers_and_do_not_leak_into_other_tasks(
    service: Service,
) -> None:
    # Given JSON Schema's integers, which include 7.0, for top_n and seed
    params = {"texts": TEXTS, "analysis_types": ["entities"], "detail": "summary"}
    # When one task gives them as floats and the next as ints
    floats = await service.rpc.run("analyze_content", {**params, "top_n": 7.0, "seed": 0.0})
    ints = await service.rpc.run("analyze_content", {**params, "top_n": 7, "seed": 0})
    # Then both complete with the same result
    assert floats["status"] == ints["status"] == "completed", floats["error"]
    assert floats["result"] == ints["result"]


async def test_python_callers_may_spell_priorities_in_any_case(service: Service) -> None:
    task_id = service.manager.create_task("debug.echo", kwargs={"value": 1}, priority="HIGH")
    assert (await service.rpc.status(task_id))["priority"] == "high"
    service.manager.cancel(task_id)
