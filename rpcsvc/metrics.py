"""Prometheus metrics on ``GET /metrics``, from task transitions and JSON-RPC calls.

Each app gets its own ``CollectorRegistry`` (never the process-global one), so that several
apps in one process (tests, an embedding service) keep separate figures. Counters and
histograms are fed as things happen: the manager's ``listeners`` hook reports every task
transition and the JSON-RPC dispatcher's observer hook every request. Gauges that the
manager or the pool already know (pending, running, workers alive) are read at scrape time.
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Iterator
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from .jsonrpc import RPC_KEY
from .manager import TaskManager
from .task import Task, TaskStatus

log = logging.getLogger(__name__)

# Tasks run from milliseconds (one post) to an hour (a large collection).
TASK_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)
# A call is usually sub-millisecond; task.wait may hold one for up to 300 s.
RPC_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5, 30, 300)


class ServiceMetrics:
    """Every metric of one app, in its own registry."""

    def __init__(self, manager: TaskManager) -> None:
        self.registry = CollectorRegistry()
        reg = self.registry
        self.tasks_created = Counter(
            "rpcsvc_tasks_created", "Tasks created, by task type.", ["type"], registry=reg
        )
        self.tasks_finished = Counter(
            "rpcsvc_tasks_finished",
            "Tasks finished, by task type and final state (completed, failed, cancelled).",
            ["type", "status"],
            registry=reg,
        )
        self.task_duration = Histogram(
            "rpcsvc_task_duration_seconds",
            "Time from a task's start to its end, by task type (tasks that started).",
            ["type"],
            buckets=TASK_BUCKETS,
            registry=reg,
        )
        self.queue_wait = Histogram(
            "rpcsvc_task_queue_wait_seconds",
            "Time a task waited from creation to its start, by task type.",
            ["type"],
            buckets=TASK_BUCKETS,
            registry=reg,
        )
        self.rpc_requests = Counter(
            "rpcsvc_rpc_requests",
            "JSON-RPC request objects answered, by method and error code ('ok' when none); "
            "unknown methods count as '<unknown>', malformed requests as '<invalid>'.",
            ["method", "code"],
            registry=reg,
        )
        self.rpc_duration = Histogram(
            "rpcsvc_rpc_request_duration_seconds",
            "Time to answer one JSON-RPC request object, by method.",
            ["method"],
            buckets=RPC_BUCKETS,
            registry=reg,
        )
        # (type, status) -> unfinished tasks; counted here from transitions, since the
        # manager's running_count also counts tasks that are still pending.
        self.unfinished: collections.Counter[tuple[str, TaskStatus]] = collections.Counter()
        reg.register(_LiveCollector(manager, self.unfinished))
        ProcessCollector(registry=reg)
        PlatformCollector(registry=reg)
        self._last_status: dict[str, TaskStatus] = {}  # unfinished tasks only
        self._rpc_children: dict[tuple[str, int | None], tuple[Any, Any]] = {}

    def on_task(self, task: Task) -> None:
        """The manager's listener: called on creation, start, progress and finish."""
        try:
            self._on_task(task)
        except Exception:  # a metrics bug must never break a task transition
            log.exception("metrics: task %s", task.task_id)

    def _on_task(self, task: Task) -> None:
        previous = self._last_status.get(task.task_id)
        status = task.status
        if previous is status:
            return  # a progress update
        if previous is None and status is TaskStatus.PENDING:
            self.tasks_created.labels(task.type).inc()
        if previous is not None:
            self.unfinished[(task.type, previous)] -= 1
        if status is TaskStatus.RUNNING and task.started_at is not None:
            self.queue_wait.labels(task.type).observe(task.started_at - task.created_at)
        if status.finished:
            self._last_status.pop(task.task_id, None)
            self.tasks_finished.labels(task.type, status.value).inc()
            if task.duration is not None:
                self.task_duration.labels(task.type).observe(task.duration)
        else:
            self._last_status[task.task_id] = status
            self.unfinished[(task.type, status)] += 1

    def on_rpc(self, method: str, code: int | None, seconds: float) -> None:
        """The JSON-RPC observer: one call per request object."""
        children = self._rpc_children.get((method, code))
        if children is None:
            children = (
                self.rpc_requests.labels(method, "ok" if code is None else str(code)),
                self.rpc_duration.labels(method),
            )
            self._rpc_children[(method, code)] = children
        children[0].inc()
        children[1].observe(seconds)


class _LiveCollector(Collector):
    """Gauges read at scrape time: unfinished tasks by type, and the pool."""

    def __init__(
        self, manager: TaskManager, unfinished: collections.Counter[tuple[str, TaskStatus]]
    ) -> None:
        self.manager = manager
        self.unfinished = unfinished

    def collect(self) -> Iterator[Metric]:
        executor = self.manager.executor
        for status, help_text in (
            (TaskStatus.PENDING, "Tasks waiting to start, by task type."),
            (TaskStatus.RUNNING, "Tasks started and not yet finished, by task type."),
        ):
            gauge = GaugeMetricFamily(f"rpcsvc_tasks_{status.value}", help_text, labels=["type"])
            for (task_type, state), count in sorted(self.unfinished.items()):
                if state is status:
                    gauge.add_metric([task_type], count)
            yield gauge
        yield GaugeMetricFamily(
            "rpcsvc_worker_processes", "Worker processes alive.", value=executor.alive_workers
        )
        yield GaugeMetricFamily(
            "rpcsvc_worker_processes_configured",
            "Worker processes the pool should have.",
            value=executor.capacity,
        )
        yield GaugeMetricFamily(
            "rpcsvc_pool_jobs_running",
            "Pool calls in flight (busy workers).",
            value=executor.running,
        )
        yield CounterMetricFamily(
            "rpcsvc_worker_restarts",
            "Times the pool was rebuilt after a worker process died or was stopped.",
            value=executor.restarts,
        )


METRICS_KEY = web.AppKey("metrics", ServiceMetrics)


def setup_metrics(app: web.Application, manager: TaskManager) -> ServiceMetrics:
    """Feed metrics from ``manager`` and the app's ``/rpc``; serve them on ``GET /metrics``."""
    metrics = ServiceMetrics(manager)
    manager.listeners.append(metrics.on_task)
    app[RPC_KEY].observers.append(metrics.on_rpc)
    app[METRICS_KEY] = metrics
    app.router.add_get("/metrics", metrics_handler)
    return metrics


async def metrics_handler(request: web.Request) -> web.Response:
    """The Prometheus text format (or OpenMetrics, when the scraper asks for it)."""
    encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
    body = encoder(request.app[METRICS_KEY].registry)
    return web.Response(body=body, headers={"Content-Type": content_type})
