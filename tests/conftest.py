"""Fixtures: the real app (real worker processes) behind aiohttp's test client."""

from __future__ import annotations

import io
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient

from rpcsvc.app import MANAGER_KEY, create_app
from rpcsvc.client import RpcClient
from rpcsvc.config import Settings
from rpcsvc.manager import TaskManager


class Service:
    """A running server as tests see it: the JSON-RPC client, raw HTTP, and the manager."""

    def __init__(self, http: TestClient, rpc: RpcClient) -> None:
        self.http = http
        self.rpc = rpc

    @property
    def manager(self) -> TaskManager:
        return self.http.app[MANAGER_KEY]  # type: ignore[index]

    async def post(self, body: bytes | str, **kwargs: Any) -> tuple[int, Any]:
        """A raw POST /rpc; returns (HTTP status, parsed JSON body or None)."""
        data = io.BytesIO(body.encode() if isinstance(body, str) else body)
        response = await self.http.post("/rpc", data=data, **kwargs)
        text = await response.text()
        return response.status, (orjson.loads(text) if text else None)


StartService = Callable[..., Awaitable[Service]]


@pytest.fixture
async def start_service(aiohttp_client: Any) -> StartService:
    """Start the real app with settings overrides; aiohttp_client stops it after the test."""

    async def start(**overrides: Any) -> Service:
        settings = Settings(**{"workers": 2, "debug_tasks": True, **overrides})
        http = await aiohttp_client(create_app(settings))
        return Service(http, RpcClient("/rpc", session=http))

    return start


@pytest.fixture
async def service(start_service: StartService) -> Service:
    return await start_service()
