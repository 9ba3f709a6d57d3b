"""An async Python client for rpcsvc, on top of ``aiohttp_jsonrpc.client.ServerProxy``.

Errors come back as the project's own exception classes (``rpcsvc.errors``), with ``data``.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any

import aiohttp
import orjson
from aiohttp_jsonrpc.client import ServerProxy

from . import errors


def _dumps(payload: Any) -> io.BytesIO:
    # A file-like body: aiohttp streams it instead of warning about large raw bytes.
    return io.BytesIO(orjson.dumps(payload))


class _Proxy(ServerProxy):
    @staticmethod
    def _parse_response(response: dict[str, Any]) -> Any:
        if "error" in response:
            raise errors.from_error(response["error"])
        return response.get("result")


class RpcClient:
    """Typed calls to a running rpcsvc; use as ``async with RpcClient(url) as rpc: ...``."""

    def __init__(
        self,
        url: str,
        *,
        session: aiohttp.ClientSession | Any | None = None,
        token: str | None = None,
    ) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else None
        self.url = url
        self._proxy = _Proxy(
            url,
            client=session,
            client_owner=session is None,
            headers=headers,
            loads=orjson.loads,
            dumps=_dumps,
        )

    def __repr__(self) -> str:
        return f"<RpcClient {self.url}>"

    async def __aenter__(self) -> RpcClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._proxy.close()

    async def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """Call any method, params by position or by name (not both)."""
        if args and kwargs:
            raise TypeError("give params by position or by name, not both")
        return await self._proxy[method](*args, **kwargs)

    async def notify(self, method: str, **params: Any) -> None:
        request = {"jsonrpc": "2.0", "method": method, "params": params}
        await self._proxy.client.post(
            self.url, data=orjson.dumps(request), headers=self._proxy.headers
        )

    async def batch(
        self, calls: Sequence[tuple[str, Mapping[str, Any] | Sequence[Any]]]
    ) -> list[Any]:
        """Several calls in one JSON-RPC batch; failed ones come back as exceptions."""
        prepared = []
        for method, params in calls:
            if isinstance(params, Mapping):
                prepared.append(self._proxy[method].prepare(**params))
            else:
                prepared.append(self._proxy[method].prepare(*params))
        return list(await self._proxy(*prepared))

    async def create(
        self,
        type: str,
        params: Mapping[str, Any] | None = None,
        *,
        priority: str = "normal",
        timeout: float | None = None,
    ) -> dict[str, Any]:
        return await self.call(  # type: ignore[no-any-return]
            "task.create", type=type, params=dict(params or {}), priority=priority, timeout=timeout
        )

    async def status(self, task_id: str) -> dict[str, Any]:
        return await self.call("task.status", task_id=task_id)  # type: ignore[no-any-return]

    async def list(self, **filters: Any) -> dict[str, Any]:
        return await self.call("task.list", **filters)  # type: ignore[no-any-return]

    async def cancel(self, task_id: str) -> dict[str, Any]:
        return await self.call("task.cancel", task_id=task_id)  # type: ignore[no-any-return]

    async def wait(self, task_id: str, timeout: float = 30) -> dict[str, Any]:
        return await self.call(  # type: ignore[no-any-return]
            "task.wait", task_id=task_id, timeout=timeout
        )

    async def run(
        self, type: str, params: Mapping[str, Any] | None = None, **options: Any
    ) -> dict[str, Any]:
        """Create a task and wait (in 300 s steps) until it has finished."""
        task = await self.create(type, params, **options)
        while task["status"] in ("pending", "running"):
            task = await self.wait(task["task_id"], 300)
        return task
