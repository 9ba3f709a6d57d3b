"""JSON-RPC 2.0 over HTTP, to the letter of the specification, on top of aiohttp-jsonrpc.

aiohttp-jsonrpc's ``JSONRPCView`` gives the shape (a class-based aiohttp view with an
``authorize`` hook); its request handling departs from the specification (HTTP 400 on a parse
error, -32500 for an unknown method, ``[]`` answered with ``[]``, a 500 on ``[1, 2]``, no
dotted names), so ``post`` is replaced here. Methods live in a :class:`MethodTable` that also
describes them (params as JSON Schemas) for validation and for ``rpc.discover``.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
import types
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web
from aiohttp_jsonrpc.handler import JSONRPCView

from . import errors
from .methodtable import MISSING, Method, MethodTable, Missing

log = logging.getLogger(__name__)


# Called once per request object with (method, error code or None, seconds): the metrics hook.
# ``method`` is the method's name, UNKNOWN_METHOD or INVALID_REQUEST, so that callers cannot
# grow the label set with made-up names.
Observer = Callable[[str, "int | None", float], None]
UNKNOWN_METHOD = "<unknown>"
INVALID_REQUEST = "<invalid>"
_JSON_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


@dataclass(frozen=True)
class RpcBinding:
    """What ``/rpc`` serves: the method table, the object handlers get first, the token."""

    table: MethodTable
    context: Any
    token: str | None = None
    observers: list[Observer] = field(default_factory=list)


RPC_KEY = web.AppKey("rpc", RpcBinding)


class RpcView(JSONRPCView):
    """``POST /rpc``: single requests, batches and notifications per JSON-RPC 2.0."""

    async def authorize(self) -> None:
        token = self.request.app[RPC_KEY].token
        if token is None:
            return
        header = self.request.headers.get("Authorization", "")
        scheme, _, given = header.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            given.strip().encode(), token.encode()
        ):
            raise web.HTTPUnauthorized(
                text='{"error": "missing or wrong bearer token"}',
                content_type="application/json",
                headers={"WWW-Authenticate": 'Bearer realm="rpcsvc"'},
            )

    async def post(self) -> web.Response:
        request = self.request
        binding = request.app[RPC_KEY]
        if binding.token is not None:
            await self.authorize()
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge as exc:
            limit = request.app._client_max_size
            error = errors.LimitExceeded(
                f"Request body exceeds max_body_mib ({limit} bytes)",
                data={"limit": "max_body_mib", "max_bytes": limit},
            )
            _observe(binding.observers, INVALID_REQUEST, error.code, time.perf_counter())
            return web.Response(
                status=exc.status,
                body=_dumps(_error_response(None, error)),
                content_type="application/json",
            )
        response = await handle_body(body, binding.table, binding.context, binding.observers)
        if response is None:
            return web.Response(status=204)
        return web.Response(body=response, content_type="application/json")


async def handle_body(
    body: bytes, table: MethodTable, context: Any, observers: Sequence[Observer] = ()
) -> bytes | None:
    """One HTTP body in, the serialised response out (None when nothing is to be answered)."""
    start = time.perf_counter()
    try:
        message = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        return _dumps(_rejected(errors.ParseError(f"Parse error: {exc}"), observers, start))
    if isinstance(message, list):
        if not message:
            error: errors.RpcsvcError = errors.InvalidRequest("Invalid Request: empty batch")
            return _dumps(_rejected(error, observers, start))
        limit = getattr(getattr(context, "settings", None), "max_batch", None)
        if limit is not None and len(message) > limit:
            error = errors.LimitExceeded(
                f"Batch of {len(message)} requests exceeds max_batch={limit}",
                data={"limit": "max_batch", "max": limit, "got": len(message)},
            )
            return _dumps(_rejected(error, observers, start))
        answers = [_dispatch(item, table, context, observers) for item in message]
        waiting = [a for a in answers if type(a) is _Waiting]
        if waiting:
            # Futures, not tasks: gathering 500 task.wait calls costs 500 done-callbacks.
            await asyncio.gather(*(w.future for w in waiting), return_exceptions=True)
            answers = [a.answer() if type(a) is _Waiting else a for a in answers]
        replies = [a for a in answers if a is not None]
        return _dumps(replies) if replies else None
    answer = _dispatch(message, table, context, observers)
    if type(answer) is _Waiting:
        await asyncio.gather(answer.future, return_exceptions=True)  # cancelled with the request
        answer = answer.answer()
    return None if answer is None else _dumps(answer)


def _dispatch(message: Any, table: MethodTable, context: Any, observers: Sequence[Observer]) -> Any:
    """Answer one request object: a response dict, None (notification), or a :class:`_Waiting`
    when the handler returned an awaitable."""
    start = time.perf_counter()
    error: errors.RpcsvcError
    if type(message) is not dict:
        error = errors.InvalidRequest("Invalid Request: not an object")
        return _rejected(error, observers, start)
    request_id = message.get("id", MISSING)
    if type(request_id) not in _ID_TYPES:
        error = errors.InvalidRequest("Invalid Request: id must be a string, number or null")
        return _rejected(error, observers, start)
    is_notification = request_id is MISSING
    reply_id = None if is_notification else request_id
    name = message.get("method")
    params = message.get("params", MISSING)
    if message.get("jsonrpc") != "2.0" or type(name) is not str or type(params) not in _PARAMS:
        error = errors.InvalidRequest(f"Invalid Request: {_request_problem(message)}")
        return _rejected(error, observers, start, reply_id)
    method = table.get(name)
    if method is None:
        _observe(observers, UNKNOWN_METHOD, errors.MethodNotFound.code, start)
        if is_notification:
            return None
        error = errors.MethodNotFound(f"Method not found: {name!r}", data={"method": name})
        return _error_response(reply_id, error)
    try:
        result = method.handler(context, **method.bind(params))
        if isinstance(result, _AWAITABLE):
            # only what must wait pays for a future (and a coroutine for a task)
            future = asyncio.ensure_future(result)
            return _Waiting(method, future, reply_id, is_notification, observers, start)
    except Exception as exc:
        error = _as_rpc_error(exc, method)
        _observe(observers, method.name, error.code, start)
        return None if is_notification else _error_response(reply_id, error)
    _observe(observers, method.name, None, start)
    return None if is_notification else {"jsonrpc": "2.0", "result": result, "id": reply_id}


# Exact types as orjson parses them (a bool is not an id, though bool subclasses int).
_ID_TYPES = frozenset({str, int, float, type(None), Missing})
_PARAMS = frozenset({dict, list, Missing})
_AWAITABLE = (asyncio.Future, types.CoroutineType)


class _Waiting:
    """A call whose handler returned an awaitable: its response once the future is done (None
    for a notification, which is still waited for before the HTTP response goes out)."""

    __slots__ = ("future", "is_notification", "method", "observers", "reply_id", "start")

    def __init__(
        self,
        method: Method,
        future: asyncio.Future[Any],
        reply_id: Any,
        is_notification: bool,
        observers: Sequence[Observer],
        start: float,
    ) -> None:
        self.method = method
        self.future = future
        self.reply_id = reply_id
        self.is_notification = is_notification
        self.observers = observers
        self.start = start

    def answer(self) -> dict[str, Any] | None:
        future, method = self.future, self.method
        if future.cancelled():
            raise asyncio.CancelledError
        exc = future.exception()
        if exc is None:
            _observe(self.observers, method.name, None, self.start)
            if self.is_notification:
                return None
            return {"jsonrpc": "2.0", "result": future.result(), "id": self.reply_id}
        if not isinstance(exc, Exception):
            raise exc
        error = _as_rpc_error(exc, method)
        _observe(self.observers, method.name, error.code, self.start)
        return None if self.is_notification else _error_response(self.reply_id, error)


def _observe(observers: Sequence[Observer], method: str, code: int | None, start: float) -> None:
    if observers:
        elapsed = time.perf_counter() - start
        for observer in observers:
            observer(method, code, elapsed)


def _rejected(
    error: errors.RpcsvcError, observers: Sequence[Observer], start: float, reply_id: Any = None
) -> dict[str, Any]:
    """The response to a request that never reached a method (counted as INVALID_REQUEST)."""
    _observe(observers, INVALID_REQUEST, error.code, start)
    return _error_response(reply_id, error)


def _request_problem(message: dict[str, Any]) -> str:
    if message.get("jsonrpc") != "2.0":
        return 'member "jsonrpc" must be exactly "2.0"'
    if not isinstance(message.get("method"), str):
        return 'member "method" must be a string'
    return 'member "params" must be an array or an object'


def _as_rpc_error(exc: Exception, method: Method) -> errors.RpcsvcError:
    if isinstance(exc, errors.RpcsvcError) and not isinstance(exc, errors.TaskError):
        return exc
    log.error("internal error in %s", method.name, exc_info=exc)  # also outside `except`
    return errors.InternalError(
        f"Internal error in {method.name}", data={"type": type(exc).__name__}
    )


def _error_response(request_id: Any, error: errors.RpcsvcError) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "error": error.to_error(), "id": request_id}


def _dumps(payload: Any) -> bytes:
    try:
        return orjson.dumps(payload, option=_JSON_OPTIONS)
    except TypeError:
        log.exception("result not serialisable")
        if isinstance(payload, list):
            return b"[" + b",".join(_dumps(item) for item in payload) + b"]"
        error = errors.InternalError("Internal error: result is not JSON-serialisable")
        return orjson.dumps(_error_response(payload.get("id"), error))
