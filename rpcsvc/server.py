"""The server as a process: listen, and on SIGTERM / SIGINT drain before stopping.

``web.run_app`` stops listening first and only then lets the application clean up, so callers
could not fetch the results of tasks that finish during the grace period, and a ``task.wait``
held open could delay the stop by aiohttp's 60 s. Here, on SIGTERM or SIGINT:

1. the TaskManager stops accepting tasks (``task.create`` answers ShuttingDown, -32005, and
   ``/healthz`` says ``draining`` with 503) and cancels the pending ones;
2. running tasks get ``shutdown_grace`` seconds to finish while ``task.status`` and
   ``task.wait`` keep answering; then the rest are cancelled, so every open wait returns;
3. the listener closes and requests in progress get ``HTTP_DRAIN_TIMEOUT`` to be answered;
4. the application's cleanup stops every worker process and flushes the state file.

A second signal during the grace period cuts it short.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal

from aiohttp import web
from aiohttp.log import access_logger

from .app import MANAGER_KEY, create_app
from .config import Settings

log = logging.getLogger("rpcsvc")

HTTP_DRAIN_TIMEOUT = 5.0  # seconds for requests in progress once tasks are all finished

# The server keeps many long-lived objects (task records, the content store). With CPython's
# default thresholds every few hundred allocations start a collection that walks them again:
# bulk task creation spent about a third of its time there. Collect the young generation less
# often, and move what start-up allocated out of the collector's sight.
GC_THRESHOLDS = (50_000, 50, 100)


def tune_gc() -> None:
    gc.set_threshold(*GC_THRESHOLDS)
    gc.freeze()


async def serve_until_signalled(settings: Settings) -> None:
    """Run the app on ``settings.host``/``port`` until SIGTERM or SIGINT, then stop cleanly."""
    app = create_app(settings)
    manager = app[MANAGER_KEY]
    runner = web.AppRunner(
        app,
        handle_signals=False,
        shutdown_timeout=HTTP_DRAIN_TIMEOUT,
        access_log=access_logger if settings.access_log else None,
    )
    await runner.setup()
    loop = asyncio.get_running_loop()
    signals: asyncio.Queue[str] = asyncio.Queue()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, signals.put_nowait, signal.Signals(signum).name)
    try:
        await web.TCPSite(runner, settings.host, settings.port).start()
        tune_gc()
        for host, port, *_ in runner.addresses:
            log.info("listening on http://%s:%s (workers=%s)", host, port, settings.workers)
        name = await signals.get()
        log.info("%s received: draining (grace %.1f s)", name, settings.shutdown_grace)
        draining = asyncio.ensure_future(manager.shutdown())
        second = asyncio.ensure_future(signals.get())
        await asyncio.wait([draining, second], return_when=asyncio.FIRST_COMPLETED)
        if not draining.done():
            log.warning("%s received again: cutting the grace period short", second.result())
            manager.end_grace()
        second.cancel()
        await draining
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
        await runner.cleanup()
        log.info("stopped")
