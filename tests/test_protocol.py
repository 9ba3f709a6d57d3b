"""JSON-RPC 2.0 conformance of POST /rpc, checked on raw HTTP bodies."""

from __future__ import annotations

import orjson
import pytest

from tests.conftest import Service


def _req(method: str, params: object = None, id: object = 1) -> dict[str, object]:
    request: dict[str, object] = {"jsonrpc": "2.0", "method": method, "id": id}
    if params is not None:
        request["params"] = params
    return request


async def test_parse_error_is_32700_with_null_id(service: Service) -> None:
    status, body = await service.post(b'{"jsonrpc": "2.0", "method": "task.list", ')
    assert status == 200
    assert body["id"] is None
    assert body["error"]["code"] == -32700
    assert body["error"]["message"].startswith("Parse error")


async def test_empty_batch_is_one_invalid_request(service: Service) -> None:
    status, body = await service.post(b"[]")
    assert (status, body) == (
        200,
        {
            "jsonrpc": "2.0",
            "error": {"code": -32600, "message": "Invalid Request: empty batch"},
            "id": None,
        },
    )


async def test_batch_of_non_objects_gives_one_error_each(service: Service) -> None:
    status, body = await service.post(b"[1, 2, 3]")
    assert status == 200
    assert (
        body
        == [
            {
                "jsonrpc": "2.0",
                "error": {"code": -32600, "message": "Invalid Request: not an object"},
                "id": None,
            }
        ]
        * 3
    )


@pytest.mark.parametrize(
    ("request_obj", "problem"),
    [
        ({"method": "task.list", "id": 1}, 'member "jsonrpc" must be exactly "2.0"'),
        (
            {"jsonrpc": "1.0", "method": "task.list", "id": 1},
            'member "jsonrpc" must be exactly "2.0"',
        ),
        ({"jsonrpc": "2.0", "method": 5, "id": 1}, 'member "method" must be a string'),
        (
            {"jsonrpc": "2.0", "method": "task.list", "params": "x", "id": 1},
            'member "params" must be an array or an object',
        ),
    ],
)
async def test_invalid_request_objects(
    service: Service, request_obj: dict[str, object], problem: str
) -> None:
    _, body = await service.post(orjson.dumps(request_obj))
    assert body == {
        "jsonrpc": "2.0",
        "error": {"code": -32600, "message": f"Invalid Request: {problem}"},
        "id": request_obj["id"],
    }


async def test_invalid_id_type_is_invalid_request(service: Service) -> None:
    _, body = await service.post(
        orjson.dumps({"jsonrpc": "2.0", "method": "task.list", "id": {"a": 1}})
    )
    assert body["error"]["code"] == -32600
    assert body["id"] is None


async def test_unknown_method_is_32601(service: Service) -> None:
    _, body = await service.post(orjson.dumps(_req("task.frobnicate", {}, id="abc")))
    assert body == {
        "jsonrpc": "2.0",
        "error": {
            "code": -32601,
            "message": "Method not found: 'task.frobnicate'",
            "data": {"method": "task.frobnicate"},
        },
        "id": "abc",
    }


@pytest.mark.parametrize(
    ("params", "field", "problem"),
    [
        ({}, "type", "is required"),
        ({"type": 7}, "type", "must be string"),
        (
            {"type": "analyze_content", "priority": "urgent"},
            "priority",
            "must be one of ['low', 'normal', 'high', 'critical']",
        ),
        ({"type": "analyze_content", "timeout": -1}, "timeout", "must be bigger than 0"),
        (
            {"type": "analyze_content", "colour": "red"},
            "colour",
            "unknown parameter (known: type, params, priority, timeout)",
        ),
        (
            ["analyze_content", {}, "normal", None, "extra"],
            "params",
            "task.create takes at most 4 positional params, got 5",
        ),
        (
            {"type": "analyze_content", "params": {"texts": [1]}},
            "params.texts[0]",
            "must be string",
        ),
        (
            {
                "type": "analyze_content",
                "params": {"texts": ["a"], "analysis_types": ["astrology"]},
            },
            "params.analysis_types[0]",
            "must be one of ['sentiment', 'topics', 'entities', 'keywords']",
        ),
        (
            {"type": "analyze_content", "params": {"posts": [{"id": 1}]}},
            "params.posts[0]",
            "must contain ['text'] properties",
        ),
        (
            {"type": "analyze_content", "params": {}},
            "params",
            "give exactly one of texts, posts or content_ids",
        ),
    ],
)
async def test_invalid_params_name_the_field(
    service: Service, params: object, field: str, problem: str
) -> None:
    _, body = await service.post(orjson.dumps(_req("task.create", params, id=9)))
    error = body["error"]
    assert error["code"] == -32602
    assert error["data"]["field"] == field
    assert error["data"]["problem"] == problem
    assert error["message"] == f"Invalid params: {field}: {problem}"
    assert service.manager.counts()["pending"] == 0  # nothing was created


async def test_params_by_position_and_by_name_agree(service: Service) -> None:
    _, by_name = await service.post(
        orjson.dumps(_req("task.list", {"limit": 5, "status": "completed"}))
    )
    _, by_position = await service.post(orjson.dumps(_req("task.list", ["completed", None, 5])))
    assert (
        by_name
        == by_position
        == {"jsonrpc": "2.0", "result": {"tasks": [], "next_cursor": None}, "id": 1}
    )


async def test_notification_gets_no_response_but_runs(service: Service) -> None:
    # Given a notification (no id) that creates a task
    notification = {
        "jsonrpc": "2.0",
        "method": "task.create",
        "params": {"type": "debug.echo", "params": {"value": 1}},
    }
    # When it is posted
    status, body = await service.post(orjson.dumps(notification))
    # Then nothing is answered, yet the task exists
    assert (status, body) == (204, None)
    tasks = (await service.rpc.list())["tasks"]
    assert [t["type"] for t in tasks] == ["debug.echo"]


async def test_notifications_with_errors_are_silent(service: Service) -> None:
    status, body = await service.post(
        orjson.dumps(
            [
                {"jsonrpc": "2.0", "method": "nope"},
                {"jsonrpc": "2.0", "method": "task.status", "params": {}},
            ]
        )
    )
    assert (status, body) == (204, None)


async def test_batch_elements_are_answered_independently(service: Service) -> None:
    # Given a batch mixing a good call, an unknown method, bad params, a notification and junk
    batch = [
        _req("task.list", {"limit": 1}, id=1),
        _req("nope", id=2),
        _req("task.status", {"task_id": "not-a-uuid"}, id=3),
        {"jsonrpc": "2.0", "method": "task.list"},
        "junk",
    ]
    # When it is posted
    _, body = await service.post(orjson.dumps(batch))
    # Then each request is answered on its own, the notification not at all
    assert [(r["id"], r.get("error", {}).get("code")) for r in body] == [
        (1, None),
        (2, -32601),
        (3, -32602),
        (None, -32600),
    ]
    assert body[0]["result"] == {"tasks": [], "next_cursor": None}


async def test_batch_over_the_limit_is_refused_whole(start_service) -> None:  # type: ignore[no-untyped-def]
    service = await start_service(max_batch=3)
    _, body = await service.post(orjson.dumps([_req("task.list", id=i) for i in range(4)]))
    assert body == {
        "jsonrpc": "2.0",
        "error": {
            "code": -32006,
            "message": "Batch of 4 requests exceeds max_batch=3",
            "data": {"limit": "max_batch", "max": 3, "got": 4},
        },
        "id": None,
    }


async def test_unknown_task_type_lists_known_types(service: Service) -> None:
    _, body = await service.post(orjson.dumps(_req("task.create", {"type": "mine_bitcoin"})))
    error = body["error"]
    assert error["code"] == -32002
    assert error["data"]["type"] == "mine_bitcoin"
    assert "analyze_content" in error["data"]["known"]
    assert error["message"].startswith(
        "Unknown task type 'mine_bitcoin'; known types: analyze_content"
    )


async def test_task_not_found_is_32001(service: Service) -> None:
    missing = "00000000-0000-4000-8000-000000000000"
    _, body = await service.post(orjson.dumps(_req("task.status", [missing])))
    assert body["error"] == {
        "code": -32001,
        "message": f"Task {missing} not found",
        "data": {"task_id": missing},
    }


async def test_body_over_the_limit_is_413_not_500(start_service) -> None:  # type: ignore[no-untyped-def]
    service = await start_service(max_body_mib=0.01)
    status, body = await service.post(
        orjson.dumps(
            _req("task.create", {"type": "analyze_content", "params": {"texts": ["x" * 20_000]}})
        )
    )
    assert status == 413
    assert body == {
        "jsonrpc": "2.0",
        "error": {
            "code": -32006,
            "message": "Request body exceeds max_body_mib (10485 bytes)",
            "data": {"limit": "max_body_mib", "max_bytes": 10485},
        },
        "id": None,
    }


async def test_default_body_limit_admits_200k_posts(start_service) -> None:  # type: ignore[no-untyped-def]
    # Given 200,000 short posts (well over aiohttp's 1 MiB default)
    service = await start_service()
    posts = [{"id": f"p{i}", "text": "Vote! #election"} for i in range(200_000)]
    body = orjson.dumps(
        _req(
            "task.create",
            {"type": "analyze_content", "params": {"posts": posts, "detail": "summary"}},
        )
    )
    assert len(body) > 5 * 1024 * 1024
    # When they are sent in one call
    status, answer = await service.post(body)
    # Then the task is created and echoes a count, not the posts
    assert status == 200
    assert answer["result"]["params"]["posts"] == {"count": 200_000}
    await service.rpc.cancel(answer["result"]["task_id"])
