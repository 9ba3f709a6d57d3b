"""Auth, bind address, what callers may run, and request limits (issue 5), through the server."""

from __future__ import annotations

import orjson
import pytest

from rpcsvc import errors
from rpcsvc.client import RpcClient
from rpcsvc.config import Settings
from tests.conftest import Service, StartService

TOKEN = "s3cret-T0ken_with.symbols~"
LIST = orjson.dumps({"jsonrpc": "2.0", "method": "task.list", "params": {}, "id": 1})
UNAUTHORIZED = {"error": "missing or wrong bearer token"}


@pytest.mark.parametrize(
    "header",
    [None, "Bearer wrong", f"Basic {TOKEN}", f"Bearer {TOKEN}x", "Bearer", f"{TOKEN}"],
)
async def test_token_on_refuses_missing_or_wrong_tokens(
    start_service: StartService, header: str | None
) -> None:
    service = await start_service(token=TOKEN)
    headers = {} if header is None else {"Authorization": header}
    response = await service.http.post("/rpc", data=LIST, headers=headers)
    assert response.status == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="rpcsvc"'
    assert await response.json() == UNAUTHORIZED


async def test_token_on_accepts_the_token_and_health_stays_open(
    start_service: StartService,
) -> None:
    service = await start_service(token=TOKEN)
    for scheme in ("Bearer", "bearer"):
        status, body = await service.post(LIST, headers={"Authorization": f"{scheme} {TOKEN}"})
        assert (status, body) == (
            200,
            {"jsonrpc": "2.0", "result": {"tasks": [], "next_cursor": None}, "id": 1},
        )
    # the project's client sends it too
    rpc = RpcClient("/rpc", session=service.http, token=TOKEN)
    assert (await rpc.run("debug.echo", {"value": 1}))["result"] == 1
    health = await service.http.get("/healthz")
    assert health.status == 200
    assert (await health.json())["status"] == "ok"


async def test_unauthenticated_oversized_body_is_refused_before_it_is_read(
    start_service: StartService,
) -> None:
    service = await start_service(token=TOKEN, max_body_mib=0.01)
    response = await service.http.post("/rpc", data=b"x" * 200_000)
    assert response.status == 401


async def test_token_off_needs_no_header(service: Service) -> None:
    status, body = await service.post(LIST)
    assert status == 200
    assert body["result"] == {"tasks": [], "next_cursor": None}


def test_token_from_environment_is_kept_out_of_repr() -> None:
    settings = Settings.from_env({"RPCSVC_TOKEN": TOKEN})
    assert settings.token == TOKEN
    assert TOKEN not in repr(settings)
    assert Settings.from_env({}).token is None
    assert Settings().host == "127.0.0.1"


@pytest.mark.parametrize(
    "name", ["os.system", "workers.diagnostics.crash", "__import__", "builtins.eval", "../x"]
)
async def test_only_registered_task_types_run(service: Service, name: str) -> None:
    with pytest.raises(errors.UnknownTaskType) as info:
        await service.rpc.create(name, {"exit_code": 1})
    assert info.value.code == -32002
    assert info.value.data["type"] == name
    assert service.manager.executor.restarts == 0
    assert service.manager.counts() == dict.fromkeys(
        ("pending", "running", "completed", "failed", "cancelled"), 0
    )


async def test_debug_task_types_are_off_by_default(start_service: StartService) -> None:
    service = await start_service(debug_tasks=False)
    with pytest.raises(errors.UnknownTaskType) as info:
        await service.rpc.create("debug.crash", {})
    assert not [name for name in info.value.data["known"] if name.startswith("debug.")]


async def test_max_posts_per_task(start_service: StartService) -> None:
    service = await start_service(max_posts_per_task=3)
    params = {"analysis_types": ["sentiment"]}
    with pytest.raises(errors.LimitExceeded) as info:
        await service.rpc.create("analyze_content", {"texts": ["a", "b", "c", "d"], **params})
    assert info.value.code == -32006
    assert info.value.message == "params.texts: 4 items exceeds max_posts_per_task=3"
    assert info.value.data == {"field": "params.texts", "max": 3, "got": 4}
    with pytest.raises(errors.LimitExceeded):
        await service.rpc.create("analyze_content", {"posts": [{"text": "x"}] * 4, **params})
    done = await service.rpc.run("analyze_content", {"texts": ["a", "b", "c"], **params})
    assert done["status"] == "completed"


async def test_batch_at_max_batch_is_answered(start_service: StartService) -> None:
    service = await start_service(max_batch=3)
    batch = [{"jsonrpc": "2.0", "method": "task.list", "params": {}, "id": i} for i in range(3)]
    status, body = await service.post(orjson.dumps(batch))
    assert status == 200
    assert [reply["id"] for reply in body] == [0, 1, 2]
