"""The Python client and the `rpcsvc call|submit|tasks` commands, against the real server."""

from __future__ import annotations

import asyncio
import dataclasses
import signal
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from rpcsvc import cli, errors
from rpcsvc.app import create_app
from rpcsvc.client import HttpError, RpcClient
from rpcsvc.config import Settings
from rpcsvc.discover import register_discover
from rpcsvc.jsonrpc import RPC_KEY
from rpcsvc.methods import methods
from rpcsvc.methodtable import MethodTable
from rpcsvc.tasktypes import builtin_registry, register_debug_types
from tests.conftest import Service, StartService

POSTS: list[dict[str, Any]] = [
    {"id": "p1", "text": "I love this candidate!"},
    {"text": "This policy is a disaster."},
    {"id": 7, "text": "The vote is on Tuesday.", "author": "ann"},
]

CliRun = tuple[int, str, str]


def _url(service: Service) -> str:
    return str(service.http.make_url("/rpc"))


@pytest.fixture
def run_cli(capsys: pytest.CaptureFixture[str]) -> Any:
    """Run `rpcsvc ARGS` in a thread (it has its own event loop): (exit code, stdout, stderr)."""

    async def run(*argv: str) -> CliRun:
        code = await asyncio.to_thread(cli.main, list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    return run


def _jsonl(path: Path, lines: list[Any]) -> Path:
    path.write_text(
        "".join((orjson.dumps(x).decode() if x is not None else "") + "\n" for x in lines)
    )
    return path


def _rows(posts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    analyzer = SentimentIntensityAnalyzer()
    rows = []
    for post in posts:
        s = analyzer.polarity_scores(post["text"])
        c = s["compound"]
        label = "positive" if c >= 0.05 else "negative" if c <= -0.05 else "neutral"
        rows.append(
            {
                "id": post["id"],
                "compound": c,
                "pos": s["pos"],
                "neu": s["neu"],
                "neg": s["neg"],
                "label": label,
            }
        )
    return rows


async def _service_without_content_store(aiohttp_client: Any) -> Service:
    """A server whose table lacks content.* (as before the content store existed)."""
    table = MethodTable()
    for m in methods:
        if not m.name.startswith("content.") and m.name != "rpc.discover":
            table.method(
                m.name, summary=m.summary, params=m.params, result=m.result, errors=m.errors
            )(m.handler)
    register_discover(table)
    registry = builtin_registry()
    register_debug_types(registry)
    app = create_app(Settings(workers=2), registry=registry)
    app[RPC_KEY] = dataclasses.replace(app[RPC_KEY], table=table)
    http: TestClient[Any, Any] = await aiohttp_client(app)
    return Service(http, RpcClient("/rpc", session=http))


# --- the client --------------------------------------------------------------------------


async def test_typed_methods_follow_a_task_through_its_life(service: Service) -> None:
    rpc = service.rpc
    created = await rpc.create("debug.echo", {"value": [1, 2], "seconds": 0.05}, priority="high")
    assert (created["status"], created["priority"], created["params"]) == (
        "pending",
        "high",
        {"value": [1, 2], "seconds": 0.05},
    )
    # watch yields records until the finished one, which is the last
    seen = [record async for record in rpc.watch(created["task_id"], every=0.01)]
    assert seen[-1]["status"] == "completed"
    assert all(r["status"] == "running" for r in seen[:-1])
    done = await rpc.status(created["task_id"])
    assert done == {**seen[-1]}
    assert done["result"] == [1, 2]
    assert await rpc.cancel(created["task_id"]) == done
    assert await rpc.wait(created["task_id"], 1) == done
    listed = await rpc.list(limit=1)
    assert listed == {
        "tasks": [{k: v for k, v in done.items() if k != "result"}],
        "next_cursor": None,
    }


async def test_iter_tasks_pages_through_everything(service: Service) -> None:
    ids = [(await service.rpc.create("debug.echo", {"value": i}))["task_id"] for i in range(5)]
    seen = [t["task_id"] async for t in service.rpc.iter_tasks(type="debug.echo", limit=2)]
    assert seen == ids[::-1]


async def test_batch_answers_in_order_with_errors_as_exceptions(
    start_service: StartService,
) -> None:
    service = await start_service(max_batch=3)
    results = await service.rpc.batch(
        [
            ("task.create", {"type": "debug.echo", "params": {"value": 1}}),
            ("task.create", {"type": "mine_bitcoin"}),
            ("task.list", [None, None, 1]),
        ]
    )
    assert results[0]["type"] == "debug.echo"
    assert isinstance(results[1], errors.UnknownTaskType)
    assert results[1].data == {"type": "mine_bitcoin", "known": service.manager.registry.names}
    assert results[2]["tasks"][0]["task_id"] == results[0]["task_id"]
    # A batch refused whole raises
    with pytest.raises(errors.LimitExceeded) as info:
        await service.rpc.batch([("task.list", {})] * 4)
    assert info.value.data == {"limit": "max_batch", "max": 3, "got": 4}


async def test_errors_are_the_projects_classes(service: Service) -> None:
    with pytest.raises(errors.TaskNotFound) as info:
        await service.rpc.status("00000000-0000-4000-8000-000000000000")
    assert info.value.code == -32001
    assert info.value.data == {"task_id": "00000000-0000-4000-8000-000000000000"}
    with pytest.raises(errors.MethodNotFound):
        await service.rpc.call("task.frobnicate")
    with pytest.raises(TypeError):
        await service.rpc.call("task.list", None, limit=1)


async def test_wrong_or_missing_token_is_an_http_error(start_service: StartService) -> None:
    service = await start_service(token="s3cret")
    with pytest.raises(HttpError) as info:
        await service.rpc.stats()
    assert (info.value.status, info.value.data) == (401, {"status": 401})
    with pytest.raises(HttpError):
        await service.rpc.batch([("task.list", {})])
    with_token = RpcClient("/rpc", session=service.http, token="s3cret")
    stats = await with_token.stats()
    assert stats["workers"] == {"alive": 2, "configured": 2, "busy": 0, "restarts": 0}


async def test_content_store_methods(service: Service) -> None:
    if methods.get("content.add") is None:
        pytest.skip("content.* methods are not registered on this server yet")
    added = await service.rpc.content_add(
        [{"id": "a", "text": "hello"}, {"id": "b", "text": "bye"}]
    )
    assert added == {"added": 2, "updated": 0, "content_ids": ["upload:a", "upload:b"]}
    assert await service.rpc.content_count() == 2
    assert await service.rpc.content_count("upload") == 2
    assert await service.rpc.content_count("reddit") == 0
    got = await service.rpc.content_get(["upload:b", "upload:a"])
    assert [(p["content_id"], p["text"]) for p in got] == [
        ("upload:b", "bye"),
        ("upload:a", "hello"),
    ]
    page = await service.rpc.content_list(limit=1)
    assert [p["content_id"] for p in page["posts"]] == ["upload:a"]
    rest = await service.rpc.content_list(limit=1, cursor=page["next_cursor"])
    assert [p["content_id"] for p in rest["posts"]] == ["upload:b"]
    with pytest.raises(errors.ContentNotFound) as info:
        await service.rpc.content_get(["upload:zzz"])
    assert info.value.data["missing"] == ["upload:zzz"]


# --- rpcsvc call / tasks -------------------------------------------------------------------


async def test_call_prints_the_result_as_json(service: Service, run_cli: Any) -> None:
    code, out, err = await run_cli(
        "call", "task.create", "--url", _url(service),
        "type=debug.echo", 'params={"value": "hi"}', "priority=low", "timeout=null",
    )  # fmt: skip
    assert (code, err) == (0, "")
    created = orjson.loads(out)
    assert (created["type"], created["priority"], created["params"]) == (
        "debug.echo",
        "low",
        {"value": "hi"},
    )
    done = await service.rpc.wait(created["task_id"])
    # by position, and a value that is not JSON is taken as a string
    code, out, err = await run_cli(
        "call", "--url", _url(service), "task.status", created["task_id"]
    )
    assert (code, orjson.loads(out), err) == (0, done, "")


async def test_call_reports_errors_with_code_and_data(service: Service, run_cli: Any) -> None:
    code, out, err = await run_cli("call", "--url", _url(service), "task.list", "limit=5000")
    assert (code, out) == (1, "")
    assert err == (
        "rpcsvc: error -32602: Invalid params: limit: must be smaller than or equal to 1000\n"
        '{"field":"limit","problem":"must be smaller than or equal to 1000"}\n'
    )
    code, _, err = await run_cli("call", "--url", _url(service), "task.list", "limit=1", "x")
    assert (code, err) == (1, "rpcsvc: give params either all as key=value or all by position\n")


async def test_call_cannot_reach_a_closed_port(run_cli: Any) -> None:
    code, _, err = await run_cli("call", "--url", "http://127.0.0.1:9", "service.stats")
    assert code == 1
    assert err.startswith("rpcsvc: cannot reach http://127.0.0.1:9: ")


async def test_token_from_option_or_environment(
    start_service: StartService, run_cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = await start_service(token="s3cret")
    code, out, err = await run_cli("call", "--url", _url(service), "service.stats")
    assert (code, out) == (1, "")
    assert err == "rpcsvc: HTTP 401: missing or wrong bearer token (give --token or RPCSVC_TOKEN)\n"
    code, out, _ = await run_cli(
        "call", "--url", _url(service), "--token", "s3cret", "service.stats"
    )
    assert (code, orjson.loads(out)["queue_depth"]) == (0, 0)
    monkeypatch.setenv("RPCSVC_TOKEN", "s3cret")
    monkeypatch.setenv("RPCSVC_URL", _url(service))
    code, out, _ = await run_cli("tasks")
    assert (code, out) == (0, f"{'  '.join(cli.TASK_COLUMNS)}\n(no tasks)\n")


async def test_tasks_prints_a_table(service: Service, run_cli: Any) -> None:
    done = await service.rpc.run("debug.echo", {"value": 1})
    slept = await service.rpc.create("debug.sleep", {"seconds": 0})
    slept = await service.rpc.wait(slept["task_id"])
    code, out, err = await run_cli("tasks", "--url", _url(service), "--limit", "1")
    assert (code, err) == (0, "")
    started, finished = (
        cli.datetime.fromisoformat(slept[k]) for k in ("started_at", "finished_at")
    )
    duration = f"{(finished - started).total_seconds():.3f}s"
    created = slept["created_at"].replace("T", " ")[:19]
    assert out.splitlines() == [
        "TASK ID                               TYPE         STATUS     PRIORITY  PROGRESS  "
        "CREATED              DURATION",
        f"{slept['task_id']}  debug.sleep  completed  normal    -         {created}  {duration}",
        f"(more: --cursor {2})",
    ]
    code, out, _ = await run_cli(
        "tasks", "--url", _url(service), "--type", "debug.echo", "--status", "completed"
    )
    assert [line.split()[0] for line in out.splitlines()] == ["TASK", done["task_id"]]
    code, out, _ = await run_cli("tasks", "--url", _url(service), "--status", "failed")
    assert out.splitlines()[1:] == ["(no tasks)"]


# --- rpcsvc submit ---------------------------------------------------------------------------


async def test_submit_inline_when_there_is_no_content_store(
    aiohttp_client: Any, run_cli: Any, tmp_path: Path
) -> None:
    # Given a server without content.add and a JSON Lines file with a blank line
    service = await _service_without_content_store(aiohttp_client)
    source = _jsonl(tmp_path / "posts.jsonl", [POSTS[0], None, POSTS[1], POSTS[2]])
    out = tmp_path / "results.json"
    # When it is submitted
    code, stdout, err = await run_cli(
        "submit", str(source), "--url", _url(service), "--analysis", "sentiment", "--out", str(out)
    )
    # Then the result file holds the task's result, with ids kept or given by line
    assert (code, stdout) == (0, "")
    result = orjson.loads(out.read_bytes())
    ids = ["p1", "posts-3", 7]
    assert result["posts"] == _rows([{**p, "id": i} for p, i in zip(POSTS, ids, strict=True)])
    assert result["summary"]["count"] == 3
    tasks = (await service.rpc.list())["tasks"]
    assert len(tasks) == 1
    assert tasks[0]["params"]["posts"][1] == {"id": "posts-3", "text": POSTS[1]["text"]}
    # And standard error told the task id, showed the progress bar and where the result went
    task_id = tasks[0]["task_id"]
    assert err.startswith(f"rpcsvc: task {task_id} created (3 posts); Ctrl-C cancels it\n")
    assert "analyse: 100%" in err and "3/3" in err
    assert err.endswith(f"rpcsvc: task {task_id} completed -> {out}\n")


async def test_submit_through_the_content_store(
    service: Service, run_cli: Any, tmp_path: Path
) -> None:
    document = await service.rpc.discover()
    properties = document["components"]["schemas"]["TaskParams.analyze_content"]["properties"]
    if methods.get("content.add") is None or "content_ids" not in properties:
        pytest.skip("this server has no content store to upload to yet")
    source = _jsonl(tmp_path / "posts.jsonl", POSTS)
    code, stdout, err = await run_cli(
        "submit", str(source), "--url", _url(service), "--batch-size", "2", "--summary-only"
    )  # fmt: skip
    assert code == 0, err
    assert "upload: 100%" in err
    tasks = (await service.rpc.list(type="analyze_content"))["tasks"]
    assert tasks[0]["params"]["content_ids"] == ["upload:p1", "upload:posts-2", "upload:7"]
    assert orjson.loads(stdout) == (await service.rpc.status(tasks[0]["task_id"]))["result"]


async def test_submit_names_the_bad_line(service: Service, run_cli: Any, tmp_path: Path) -> None:
    source = tmp_path / "posts.jsonl"
    source.write_text('{"text": "fine"}\n\n{"text": oops}\n')
    code, _, err = await run_cli("submit", str(source), "--url", _url(service))
    assert code == 1
    assert err.startswith(f"rpcsvc: {source}:3: not valid JSON (unexpected character")
    source.write_text('{"text": "fine"}\n{"body": "no text"}\n')
    code, _, err = await run_cli("submit", str(source), "--url", _url(service))
    assert (code, err) == (1, f"rpcsvc: {source}:2: expected an object with a string 'text'\n")
    assert (await service.rpc.list())["tasks"] == []


async def test_submit_rejects_unknown_analysis_before_uploading(
    service: Service, run_cli: Any, tmp_path: Path
) -> None:
    source = _jsonl(tmp_path / "posts.jsonl", POSTS)
    code, _, err = await run_cli(
        "submit", str(source), "--url", _url(service), "--analysis", "sentiment,astrology"
    )
    assert code == 1
    assert err.startswith("rpcsvc: unknown analysis astrology; this server offers sentiment")
    assert (await service.rpc.list())["tasks"] == []


async def test_ctrl_c_on_submit_cancels_the_task(service: Service, tmp_path: Path) -> None:
    # Given a busy pool, so that the submitted analysis stays pending
    blockers = [await service.rpc.create("debug.sleep", {"seconds": 60}) for _ in range(2)]
    source = _jsonl(tmp_path / "posts.jsonl", POSTS)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "rpcsvc.cli", "submit", str(source), "--url", _url(service),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert process.stderr is not None
    try:
        # When the command has created its task and Ctrl-C is pressed
        # (an upload progress bar may come first, when the server has a content store)
        line = ""
        while not line.startswith("rpcsvc: task "):
            line = (await asyncio.wait_for(process.stderr.readline(), 30)).decode()
            assert line, "the command ended before creating its task"
            line = line.rsplit("\r", 1)[-1]
        assert "created" in line, line
        task_id = line.split()[2]
        process.send_signal(signal.SIGINT)
        _, rest = await asyncio.wait_for(process.communicate(), 30)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    # Then the command ends with 130 and the task was cancelled on the server, never started
    assert process.returncode == 130
    assert f"rpcsvc: task {task_id} cancelled" in rest.decode()
    task = await service.rpc.status(task_id)
    assert (task["status"], task["started_at"]) == ("cancelled", None)
    for blocker in blockers:
        await service.rpc.cancel(blocker["task_id"])
