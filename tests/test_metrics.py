"""GET /metrics: task and RPC figures from a real server with real worker processes."""

from __future__ import annotations

import contextlib
from typing import Any

import orjson
from prometheus_client.parser import text_string_to_metric_families

from rpcsvc import errors
from tests.conftest import Service, StartService

TEXTS = ["A fine speech.", "A dreadful speech."]


async def scrape(service: Service, accept: str = "") -> dict[tuple[str, tuple[Any, ...]], float]:
    """``{(sample name, sorted labels): value}`` of every ``rpcsvc_*`` sample but ``*_created``."""
    response = await service.http.get("/metrics", headers={"Accept": accept} if accept else {})
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    samples = {}
    for family in text_string_to_metric_families(await response.text()):
        for sample in family.samples:
            if sample.name.startswith("rpcsvc_") and not sample.name.endswith("_created"):
                samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def counters(samples: dict[tuple[str, tuple[Any, ...]], float]) -> dict[str, float]:
    """The samples that are not histogram parts, keyed ``name{k=v,...}`` for readable diffs."""
    return {
        name + "{" + ",".join(f"{k}={v}" for k, v in labels) + "}": value
        for (name, labels), value in samples.items()
        if not name.endswith(("_bucket", "_sum", "_count"))
    }


def unfinished(samples: dict[str, float]) -> dict[str, float]:
    return {
        k: v
        for k, v in samples.items()
        if k.startswith(("rpcsvc_tasks_pending", "rpcsvc_tasks_running"))
    }


async def test_tasks_and_calls_are_counted_by_type_state_method_and_code(service: Service) -> None:
    # Given two completed analyses, a failed task and a cancelled running one
    analyses = await service.rpc.batch(
        [("task.create", {"type": "analyze_content", "params": {"texts": TEXTS}})] * 2
    )
    failing = await service.rpc.create("debug.fail", {"message": "bad post"})
    echo = await service.rpc.create("debug.echo", {"value": 1, "seconds": 60})
    for task in [*analyses, failing]:
        await service.rpc.wait(task["task_id"])
    await service.rpc.cancel(echo["task_id"])
    # and calls that fail: an unknown method, bad params, a parse error, a notification
    await service.post(orjson.dumps({"jsonrpc": "2.0", "method": "task.nope", "id": 1}))
    with contextlib.suppress(errors.InvalidParams):
        await service.rpc.status("not-a-uuid")
    await service.post(b"{not json")
    await service.rpc.notify("task.list", limit=1)

    # When the metrics are scraped
    samples = await scrape(service)

    # Then every counter and gauge has exactly the expected value
    assert counters(samples) == {
        "rpcsvc_tasks_created_total{type=analyze_content}": 2,
        "rpcsvc_tasks_created_total{type=debug.echo}": 1,
        "rpcsvc_tasks_created_total{type=debug.fail}": 1,
        "rpcsvc_tasks_finished_total{status=completed,type=analyze_content}": 2,
        "rpcsvc_tasks_finished_total{status=failed,type=debug.fail}": 1,
        "rpcsvc_tasks_finished_total{status=cancelled,type=debug.echo}": 1,
        "rpcsvc_rpc_requests_total{code=ok,method=task.create}": 4,
        "rpcsvc_rpc_requests_total{code=ok,method=task.wait}": 3,
        "rpcsvc_rpc_requests_total{code=ok,method=task.cancel}": 1,
        "rpcsvc_rpc_requests_total{code=ok,method=task.list}": 1,
        "rpcsvc_rpc_requests_total{code=-32601,method=<unknown>}": 1,
        "rpcsvc_rpc_requests_total{code=-32602,method=task.status}": 1,
        "rpcsvc_rpc_requests_total{code=-32700,method=<invalid>}": 1,
        "rpcsvc_tasks_pending{type=analyze_content}": 0,
        "rpcsvc_tasks_pending{type=debug.echo}": 0,
        "rpcsvc_tasks_pending{type=debug.fail}": 0,
        "rpcsvc_tasks_running{type=analyze_content}": 0,
        "rpcsvc_tasks_running{type=debug.echo}": 0,
        "rpcsvc_tasks_running{type=debug.fail}": 0,
        "rpcsvc_worker_processes{}": 2,
        "rpcsvc_worker_processes_configured{}": 2,
        "rpcsvc_pool_jobs_running{}": 0,
        "rpcsvc_worker_restarts_total{}": 0,
    }
    # And the histograms saw every started task (durations) and every start (queue waits)
    count = "rpcsvc_task_duration_seconds_count"
    assert samples[(count, (("type", "analyze_content"),))] == 2
    assert samples[(count, (("type", "debug.fail"),))] == 1
    assert samples[(count, (("type", "debug.echo"),))] == 1
    wait = "rpcsvc_task_queue_wait_seconds_count"
    assert samples[(wait, (("type", "analyze_content"),))] == 2
    rpc_count = "rpcsvc_rpc_request_duration_seconds_count"
    assert samples[(rpc_count, (("method", "task.wait"),))] == 3
    # And the recorded durations agree with the task records
    records = [await service.rpc.status(t["task_id"]) for t in analyses]
    assert all(r["status"] == "completed" for r in records)
    total = samples[("rpcsvc_task_duration_seconds_sum", (("type", "analyze_content"),))]
    assert 0 < total < 30


async def test_pending_running_and_busy_workers_are_read_live(service: Service) -> None:
    # Given both workers held by long tasks and one analysis waiting behind them
    blockers = [await service.rpc.create("debug.sleep", {"seconds": 60}) for _ in range(2)]
    waiting = await service.rpc.create("analyze_content", {"texts": TEXTS})
    # When scraped
    samples = counters(await scrape(service))
    # Then the gauges show the queue and the busy pool
    assert unfinished(samples) == {
        "rpcsvc_tasks_pending{type=analyze_content}": 1,
        "rpcsvc_tasks_pending{type=debug.sleep}": 0,
        "rpcsvc_tasks_running{type=debug.sleep}": 2,
    }
    assert samples["rpcsvc_pool_jobs_running{}"] == 2
    assert "rpcsvc_tasks_finished_total{status=completed,type=analyze_content}" not in samples
    # And once everything is cancelled they drop back to zero
    for task in [*blockers, waiting]:
        await service.rpc.cancel(task["task_id"])
    samples = counters(await scrape(service))
    assert set(unfinished(samples).values()) == {0}
    assert samples["rpcsvc_tasks_finished_total{status=cancelled,type=debug.sleep}"] == 2
    assert samples["rpcsvc_tasks_finished_total{status=cancelled,type=analyze_content}"] == 1


async def test_worker_deaths_are_counted_as_restarts(service: Service) -> None:
    crash = await service.rpc.create("debug.crash", {"exit_code": 3})
    crashed = await service.rpc.wait(crash["task_id"], 30)
    assert crashed["status"] == "failed"
    samples = counters(await scrape(service))
    # max_attempts=2: the task killed a worker twice, and the pool was rebuilt each time
    assert samples["rpcsvc_worker_restarts_total{}"] == service.manager.executor.restarts >= 2
    assert samples["rpcsvc_tasks_finished_total{status=failed,type=debug.crash}"] == 1


async def test_each_app_has_its_own_registry(start_service: StartService) -> None:
    first, second = await start_service(), await start_service()
    await first.rpc.run("analyze_content", {"texts": TEXTS})
    first_samples, second_samples = counters(await scrape(first)), counters(await scrape(second))
    assert first_samples["rpcsvc_tasks_created_total{type=analyze_content}"] == 1
    assert "rpcsvc_tasks_created_total{type=analyze_content}" not in second_samples


async def test_openmetrics_when_the_scraper_asks_for_it(service: Service) -> None:
    response = await service.http.get(
        "/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"}
    )
    assert response.headers["Content-Type"].startswith("application/openmetrics-text")
    body = await response.text()
    assert "# TYPE rpcsvc_tasks_created counter" in body
    assert body.endswith("# EOF\n")
