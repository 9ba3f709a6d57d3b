"""Prometheus metrics on ``GET /metrics``, from task transitions and JSON-RPC calls.

Each app gets its own ``CollectorRegistry`` (never the process-global one), so that several
apps in one process (tests, an embedding service) keep separate figures. Counters and
histograms are fed as things happen: the manager's ``listeners`` hook reports every task
transition and the JSON-RPC dispatcher's observer hook every request object. Gauges that the
pool knows (workers alive, restarts) are read at scrape time.

The figures are kept in plain dicts and rendered by a collector at scrape time, rather than
in prometheus_client's ``Counter``/``Histogram``: they are updated on the event loop thread
only, for every call and every transition, where those classes' ``labels()`` and locks cost
several times the work being measured (measured: 12 us a task with them, 4 us with these).
"""

from __future__ import annotations

import bisect
import itertools
import logging
from collections.abc import Iterator, Sequence

from aiohttp import web
from prometheus_client import CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import choose_encoder
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from .jsonrpc import RPC_KEY
from .manager import TaskManager
from .task import Task, TaskStatus

log = logging.getLogger(__name__)

# Tasks run from milliseconds (one post) to an hour (a large collection).
TASK_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)
# A call is usually sub-millisecond; task.wait may hold one for up to 300 s.
RPC_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5, 30, 300)
_UNFINISHED = (TaskStatus.PENDING, TaskStatus.RUNNING)


class Counts:
    """A labelled counter (or, with ``gauge``, a labelled gauge)."""

    def __init__(self, name: str, doc: str, labels: Sequence[str], *, gauge: bool = False):
        self.name, self.doc, self.labels, self.gauge = name, doc, list(labels), gauge
        self.values: dict[tuple[str, ...], float] = {}

    def add(self, key: tuple[str, ...], amount: float = 1) -> None:
        self.values[key] = self.values.get(key, 0) + amount

    def family(self) -> Metric:
        kind = GaugeMetricFamily if self.gauge else CounterMetricFamily
        family = kind(self.name, self.doc, labels=self.labels)
        for key, value in sorted(self.values.items()):
            family.add_metric(list(key), value)
        return family


class Histogram:
    """A labelled histogram: per label set, a count per bucket and the sum."""

    def __init__(self, name: str, doc: str, labels: Sequence[str], buckets: Sequence[float]):
        self.name, self.doc, self.labels = name, doc, list(labels)
        self.bounds = tuple(buckets)
        self.counts: dict[tuple[str, ...], list[int]] = {}
        self.sums: dict[tuple[str, ...], float] = {}

    def observe(self, key: tuple[str, ...], value: float) -> None:
        counts = self.counts.get(key)
        if counts is None:
            counts = self.counts[key] = [0] * (len(self.bounds) + 1)
            self.sums[key] = 0.0
        counts[bisect.bisect_left(self.bounds, value)] += 1  # le: value <= bound
        self.sums[key] += value

    def family(self) -> Metric:
        family = HistogramMetricFamily(self.name, self.doc, labels=self.labels)
        names = [floatToGoString(b) for b in self.bounds] + ["+Inf"]
        for key, counts in sorted(self.counts.items()):
            cumulative = zip(names, itertools.accumulate(counts), strict=True)
            family.add_metric(list(key), list(cumulative), self.sums[key])
        return family


class ServiceMetrics(Collector):
    """Every metric of one app, in its own registry."""

    def __init__(self, manager: TaskManager) -> None:
        self.manager = manager
        self.created = Counts("rpcsvc_tasks_created", "Tasks created, by task type.", ["type"])
        self.finished = Counts(
            "rpcsvc_tasks_finished",
            "Tasks finished, by task type and final state (completed, failed, cancelled).",
            ["type", "status"],
        )
        # Counted from transitions: the manager's running_count includes pending tasks.
        self.unfinished = {
            status: Counts(
                f"rpcsvc_tasks_{status.value}",
                f"Tasks {'waiting to start' if status is TaskStatus.PENDING else 'running'}, "
                "by task type.",
                ["type"],
                gauge=True,
            )
            for status in _UNFINISHED
        }
        self.duration = Histogram(
            "rpcsvc_task_duration_seconds",
            "Time from a task's start to its end, by task type (tasks that started).",
            ["type"],
            TASK_BUCKETS,
        )
        self.queue_wait = Histogram(
            "rpcsvc_task_queue_wait_seconds",
            "Time a task waited from creation to its start, by task type.",
            ["type"],
            TASK_BUCKETS,
        )
        self.rpc_requests = Counts(
            "rpcsvc_rpc_requests",
            "JSON-RPC request objects answered, by method and error code ('ok' when none); "
            "unknown methods count as '<unknown>', malformed requests as '<invalid>'.",
            ["method", "code"],
        )
        self.rpc_duration = Histogram(
            "rpcsvc_rpc_request_duration_seconds",
            "Time to answer one JSON-RPC request object, by method.",
            ["method"],
            RPC_BUCKETS,
        )
        self.registry = CollectorRegistry()
        self.registry.register(self)
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)

    def on_task(self, task: Task, previous: TaskStatus | None) -> None:
        """The manager's listener: called on creation, start, progress and finish."""
        try:
            self._on_task(task, previous)
        except Exception:  # a metrics bug must never break a task transition
            log.exception("metrics: task %s", task.task_id)

    def _on_task(self, task: Task, previous: TaskStatus | None) -> None:
        status = task.status
        if previous is status:
            return  # a progress update
        key = (task.type,)
        if previous is None:
            self.created.add(key)
        else:
            self.unfinished[previous].add(key, -1)
        if status is TaskStatus.RUNNING:
            self.unfinished[status].add(key)
            self.queue_wait.observe(key, task.started_at - task.created_at)  # type: ignore[operator]
        elif status is TaskStatus.PENDING:
            self.unfinished[status].add(key)
        else:
            self.finished.add((task.type, status.value))
            if task.started_at is not None:
                self.duration.observe(key, task.finished_at - task.started_at)  # type: ignore[operator]

    def on_rpc(self, method: str, code: int | None, seconds: float) -> None:
        """The JSON-RPC observer: one call per request object."""
        self.rpc_requests.add((method, "ok" if code is None else str(code)))
        self.rpc_duration.observe((method,), seconds)

    def collect(self) -> Iterator[Metric]:
        yield self.created.family()
        yield self.finished.family()
        for counts in self.unfinished.values():
            yield counts.family()
        yield self.duration.family()
        yield self.queue_wait.family()
        yield self.rpc_requests.family()
        yield self.rpc_duration.family()
        executor = self.manager.executor
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
