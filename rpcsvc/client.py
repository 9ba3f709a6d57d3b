"""An async Python client for rpcsvc, on top of ``aiohttp_jsonrpc.client.ServerProxy``.

Errors come back as the project's own exception classes (``rpcsvc.errors``), with ``data``;
an HTTP-level refusal (a wrong bearer token) is a :class:`HttpError`, itself an RpcsvcError.

    async with RpcClient("http://127.0.0.1:8080", token=...) as rpc:
        task = await rpc.run("analyze_content", {"texts": ["What a debate!"]})
"""

from __future__ import annotations

import builtins
import io
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import aiohttp
import orjson
from aiohttp_jsonrpc.client import ServerProxy
from aiohttp_jsonrpc.common import py2json
from yarl import URL

from . import errors

DEFAULT_URL = "http://127.0.0.1:8080/rpc"
MAX_WAIT = 300  # task.wait's own upper bound, in seconds
FINISHED = frozenset({"completed", "failed", "cancelled"})


class HttpError(errors.RpcsvcError):
    """The server answered with an HTTP error instead of JSON-RPC (e.g. 401: wrong token)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}", data={"status": status})
        self.status = status


def rpc_url(url: str | URL) -> str:
    """``http://host:port`` -> ``http://host:port/rpc``; a URL with a path is kept as it is."""
    parsed = URL(str(url))
    if parsed.is_absolute() and parsed.path in ("", "/"):
        parsed = parsed.with_path("/rpc")
    return str(parsed)


def _dumps(payload: Any) -> io.BytesIO:
    # A file-like body: aiohttp streams it instead of warning about large raw bytes.
    return io.BytesIO(orjson.dumps(payload))


class _VerbatimList(list[Any]):
    """A param value handed to orjson as it is."""


class _VerbatimDict(dict[str, Any]):
    """A param value handed to orjson as it is."""


# aiohttp_jsonrpc converts every value of a request recursively before serialising it (about
# 50 us a post for content.add); params are plain JSON already, so skip that walk.
py2json.register(_VerbatimList)(lambda value: value)
py2json.register(_VerbatimDict)(lambda value: value)


def _verbatim(value: Any) -> Any:
    if type(value) is list:
        return _VerbatimList(value)
    if type(value) is dict:
        return _VerbatimDict(value)
    return value


class _Proxy(ServerProxy):
    @staticmethod
    def _parse_response(response: dict[str, Any]) -> Any:
        if "error" in response:
            raise errors.from_error(response["error"])
        return response.get("result")


def _http_error(status: int, reason: str) -> errors.RpcsvcError:
    if status == 401:
        return HttpError(401, "missing or wrong bearer token (give --token or RPCSVC_TOKEN)")
    if status == 413:
        return errors.LimitExceeded(
            "Request body exceeds the server's max_body_mib", data={"limit": "max_body_mib"}
        )
    return HttpError(status, reason)


class RpcClient:
    """Typed calls to a running rpcsvc; use as ``async with RpcClient(url) as rpc: ...``.

    ``url`` is the server (``http://host:port``, ``/rpc`` is added) or the full endpoint;
    ``session`` may be an ``aiohttp.ClientSession`` or a test client (then ``url`` is a path).
    Without ``session`` the client opens its own: create it inside a coroutine.
    """

    def __init__(
        self,
        url: str = DEFAULT_URL,
        *,
        session: aiohttp.ClientSession | Any | None = None,
        token: str | None = None,
    ) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.url = rpc_url(url)
        owner = session is None
        if session is None:
            # task.wait may hold a call for MAX_WAIT seconds: allow that, and a margin.
            timeout = aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=MAX_WAIT + 60)
            session = aiohttp.ClientSession(timeout=timeout)
        self._proxy = _Proxy(
            self.url,
            client=session,
            client_owner=owner,
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

    # --- generic calls ------------------------------------------------------------------

    async def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """Call any method, params by position or by name (not both)."""
        if args and kwargs:
            raise TypeError("give params by position or by name, not both")
        args = tuple(_verbatim(value) for value in args)
        kwargs = {name: _verbatim(value) for name, value in kwargs.items()}
        try:
            return await self._proxy[method](*args, **kwargs)
        except aiohttp.ClientResponseError as exc:
            raise _http_error(exc.status, exc.message) from None

    async def notify(self, method: str, **params: Any) -> None:
        """A notification: the server runs it and answers nothing."""
        await self._post({"jsonrpc": "2.0", "method": method, "params": params})

    async def batch(
        self, calls: Sequence[tuple[str, Mapping[str, Any] | Sequence[Any]]]
    ) -> builtins.list[Any]:
        """Several calls in one JSON-RPC batch, answers in order; failed ones as exceptions.

        A batch the server refuses as a whole (e.g. longer than ``max_batch``) raises.
        """
        requests = [
            {
                "jsonrpc": "2.0",
                "id": index,
                "method": method,
                "params": dict(params) if isinstance(params, Mapping) else list(params),
            }
            for index, (method, params) in enumerate(calls)
        ]
        answer = await self._post(requests)
        if isinstance(answer, dict):  # one error for the whole batch
            raise errors.from_error(answer.get("error") or {})
        by_id = {reply.get("id"): reply for reply in answer}
        results: builtins.list[Any] = []
        for index in range(len(requests)):
            reply = by_id.get(index)
            if reply is None:
                results.append(errors.InternalError(f"no answer to batch element {index}"))
            elif "error" in reply:
                results.append(errors.from_error(reply["error"]))
            else:
                results.append(reply.get("result"))
        return results

    async def _post(self, payload: Any) -> Any:
        client = self._proxy.client
        async with client.post(
            self.url, data=_dumps(payload), headers=self._proxy.headers
        ) as response:
            if response.status >= 400:
                raise _http_error(response.status, response.reason or "")
            body = await response.read()
        return orjson.loads(body) if body else None

    # --- tasks -----------------------------------------------------------------------------

    async def create(
        self,
        type: str,
        params: Mapping[str, Any] | None = None,
        *,
        priority: str = "normal",
        timeout: float | None = None,
    ) -> dict[str, Any]:
        """``task.create``: the new task's record (status ``pending``)."""
        return await self.call(
            "task.create", type=type, params=dict(params or {}), priority=priority, timeout=timeout
        )

    async def status(self, task_id: str) -> dict[str, Any]:
        """``task.status``: the task's record, with ``result`` once completed."""
        return await self.call("task.status", task_id=task_id)

    async def cancel(self, task_id: str) -> dict[str, Any]:
        """``task.cancel``: the record afterwards (a finished task is left as it was)."""
        return await self.call("task.cancel", task_id=task_id)

    async def wait(self, task_id: str, timeout: float = 30) -> dict[str, Any]:
        """``task.wait``: the record once finished, or as it is after ``timeout`` (<= 300) s."""
        return await self.call("task.wait", task_id=task_id, timeout=timeout)

    async def run(
        self, type: str, params: Mapping[str, Any] | None = None, **options: Any
    ) -> dict[str, Any]:
        """Create a task and wait (in 300 s steps) until it has finished."""
        task = await self.create(type, params, **options)
        while task["status"] not in FINISHED:
            task = await self.wait(task["task_id"], MAX_WAIT)
        return task

    async def watch(self, task_id: str, *, every: float = 0.5) -> AsyncIterator[dict[str, Any]]:
        """The task's record at least every ``every`` seconds, and at once when it finishes.

        The last record yielded is the finished one. ``task.wait`` returns as soon as the task
        finishes, so the end is seen without delay; ``every`` only paces progress updates.
        """
        while True:
            task = await self.wait(task_id, every)
            yield task
            if task["status"] in FINISHED:
                return

    async def iter_tasks(self, **filters: Any) -> AsyncIterator[dict[str, Any]]:
        """Every task summary matching ``filters`` (status, type), newest first, page by page."""
        cursor = None
        while True:
            page = await self.list(**filters, cursor=cursor)
            for task in page["tasks"]:
                yield task
            cursor = page["next_cursor"]
            if cursor is None:
                return

    # --- content store -------------------------------------------------------------------

    async def content_add(self, posts: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """``content.add``: ``{added, updated, content_ids}`` (ids in input order)."""
        return await self.call("content.add", posts=builtins.list(posts))

    async def content_get(self, content_ids: Sequence[str]) -> builtins.list[dict[str, Any]]:
        """``content.get``: the stored posts, in the order of ``content_ids``."""
        return await self.call("content.get", content_ids=builtins.list(content_ids))

    async def content_list(self, **filters: Any) -> dict[str, Any]:
        """``content.list``: a page ``{posts, next_cursor}`` in insertion order.

        Filters: ``platform``, ``author``, ``since`` (ISO 8601), ``limit``, ``cursor``.
        """
        return await self.call("content.list", **filters)

    async def content_count(self, platform: str | None = None) -> int:
        """``content.count``: how many posts the store holds (of ``platform``, if given)."""
        return await self.call("content.count", platform=platform)

    # --- the service ---------------------------------------------------------------------

    async def discover(self) -> dict[str, Any]:
        """``rpc.discover``: the OpenRPC document (methods, errors, task types)."""
        return await self.call("rpc.discover")

    async def stats(self) -> dict[str, Any]:
        """``service.stats``: tasks by state, queue depth, workers."""
        return await self.call("service.stats")

    async def list(self, **filters: Any) -> dict[str, Any]:
        """``task.list``: ``{tasks, next_cursor}``, newest first (status, type, limit, cursor)."""
        # Defined last: inside the class body the name ``list`` is this method from here on.
        return await self.call("task.list", **filters)
