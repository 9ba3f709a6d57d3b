"""The aiohttp application factory: routes, typed app keys, and resource lifetimes."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from . import content_methods, discover  # noqa: F401  (register content.*, rpc.discover)
from .collect import setup_collection
from .config import Settings
from .dashboard import setup_dashboard
from .jsonrpc import RPC_KEY, RpcBinding, RpcView
from .logs import setup_task_logging
from .manager import TaskManager
from .methods import RpcContext, methods
from .metrics import setup_metrics
from .registry import TaskRegistry
from .reports import setup_reports
from .tasktypes import builtin_registry, register_debug_types

SETTINGS_KEY = web.AppKey("settings", Settings)
MANAGER_KEY = web.AppKey("manager", TaskManager)


def create_app(
    settings: Settings | None = None, *, registry: TaskRegistry | None = None
) -> web.Application:
    """A ready-to-run application; the pool starts and stops with it (``cleanup_ctx``)."""
    settings = settings or Settings()
    app = web.Application(client_max_size=settings.max_body_bytes)
    app[SETTINGS_KEY] = settings
    if registry is None:
        registry = builtin_registry()
        if settings.debug_tasks:
            register_debug_types(registry)
    manager = TaskManager(registry=registry, settings=settings)
    app[MANAGER_KEY] = manager
    app[RPC_KEY] = RpcBinding(methods, RpcContext(manager, settings), settings.token)
    app.cleanup_ctx.append(task_manager_ctx)
    app.on_shutdown.append(drain_tasks)
    app.router.add_view("/rpc", RpcView)
    app.router.add_get("/healthz", healthz)
    setup_task_logging(manager)
    setup_metrics(app, manager)
    setup_dashboard(app)
    setup_collection(app, manager)
    setup_reports(app, manager)
    return app


async def task_manager_ctx(app: web.Application) -> AsyncIterator[None]:
    """Start the pool with the app, and stop it (without blocking the loop) on shutdown."""
    manager = app[MANAGER_KEY]
    await manager.start()
    yield
    await manager.close()


async def drain_tasks(app: web.Application) -> None:
    """Under ``web.run_app``: no new tasks, the grace for running ones, the rest cancelled,
    before aiohttp waits for open requests (so a long ``task.wait`` cannot hold the stop)."""
    await app[MANAGER_KEY].shutdown()


async def healthz(request: web.Request) -> web.Response:
    manager = request.app[MANAGER_KEY]
    body = {
        "status": manager.health,  # starting | ok | draining
        "workers": manager.executor.alive_workers,
        "pending": manager.pending_count,
        "running": manager.running_count,
    }
    return web.json_response(body, status=200 if manager.ready else 503)
