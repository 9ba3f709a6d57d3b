"""The dashboard: ``GET /`` serves a small page (rpcsvc/static/) that polls ``/rpc``.

No build step and nothing from the network: plain HTML, CSS and JavaScript shipped in the
package. The page reads ``service.stats`` (registered here) and ``task.list`` / ``task.status``
in one JSON-RPC batch every two seconds, and cancels through ``task.cancel``, so it sees
exactly what any other client sees (and needs the bearer token when one is set).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiohttp import web

from . import __version__
from .methods import RpcContext, methods
from .task import TaskStatus

STATIC_DIR = Path(__file__).with_name("static")

STATS_SCHEMA: dict[str, Any] = {
    "title": "ServiceStats",
    "type": "object",
    "required": ["version", "tasks", "queue_depth", "workers", "task_types"],
    "properties": {
        "version": {"type": "string"},
        "tasks": {
            "type": "object",
            "description": "Tasks held (not yet evicted) by state",
            "properties": {s.value: {"type": "integer"} for s in TaskStatus},
        },
        "queue_depth": {"type": "integer", "description": "Tasks waiting to start"},
        "workers": {
            "type": "object",
            "properties": {
                "alive": {"type": "integer", "description": "Worker processes alive"},
                "configured": {"type": "integer", "description": "Worker processes wanted"},
                "busy": {"type": "integer", "description": "Pool calls in flight"},
                "restarts": {"type": "integer", "description": "Pool rebuilds after a death"},
            },
        },
        "task_types": {"type": "array", "items": {"type": "string"}},
    },
}


@methods.method(
    "service.stats",
    summary="What the dashboard shows at the top: tasks by state, queue depth, workers.",
    params=[],
    result=STATS_SCHEMA,
    examples=[{"name": "current figures", "params": {}}],
)
def service_stats(ctx: RpcContext) -> dict[str, Any]:
    manager = ctx.manager
    executor = manager.executor
    return {
        "version": __version__,
        "tasks": manager.counts(),
        "queue_depth": manager.pending_count,
        "workers": {
            "alive": executor.alive_workers,
            "configured": executor.capacity,
            "busy": executor.running,
            "restarts": executor.restarts,
        },
        "task_types": manager.registry.names,
    }


async def index(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})


def setup_dashboard(app: web.Application) -> None:
    """Serve the page on ``GET /`` and its files under ``/static/``."""
    app.router.add_get("/", index)
    app.router.add_static("/static/", STATIC_DIR, name="static")
