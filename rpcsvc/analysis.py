"""The analysis task types: how ``analyze_content`` is planned, ``analyze_relationships`` and
``generate_report``.

Bulk inputs are split into chunks of ``chunk_size`` posts across the workers. The whole-set
steps (topics, keywords, the interaction graph) need every post at once; they do not need the
chunks' results, so each runs as one more pool call *beside* the chunks rather than after
them, and the merge left for the end is sums and concatenation (cheap in the server), except
for a report, whose rendering runs as a pool finish step.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Callable
from typing import Any

from workers import content, relationships, report_build
from workers.relationships import post_text

from . import errors
from .analysis_params import (
    EXAMPLE_POSTS,
    RELATIONSHIPS_SCHEMA,
    REPORT_SCHEMA,
    REPORT_SOURCES,
    SOURCE_TYPES,
    content_items,
    created_of,
    graph_input,
    graph_options,
    one_source,
    posts_of,
)
from .manager import TaskContext
from .registry import Call, Plan, TaskRegistry, TaskType
from .reports import REPORT_TYPE, prune_reports, report_files
from .task import TaskStatus

# --- analyze_content ------------------------------------------------------------------------


def plan_content(params: dict[str, Any], context: TaskContext) -> Plan:
    """One pool call for a small task; else per-post chunks, the whole-set step beside them,
    and the merge in the server."""
    items = content_items(params, context)
    k = params.get("k")
    options = content_options(
        tuple(params["analysis_types"]),
        params["detail"] == "posts",
        None if k is None else int(k),  # JSON Schema's integers include 7.0
        int(params.get("top_n", 20)),
        int(params.get("seed", 0)),
    )
    size = context.settings.chunk_size
    if len(items) <= size:
        return Plan(chunks=[Call(content.analyze_posts, (items, options), max(len(items), 1))])
    if options.with_rows and not options.wants("topics"):
        options = dataclasses.replace(options, rows_as_json=True)
    chunks = []
    if options.whole_set:
        # First in the queue: the longest single call starts while the chunks share the rest.
        texts = [text for _, text, _ in items]
        chunks.append(Call(content.analyze_whole_set, (texts, options), len(items)))
    for start in range(0, len(items), size):
        piece = items[start : start + size]
        chunks.append(Call(content.analyze_chunk, (piece, options), len(piece)))
    return Plan(chunks=chunks, finish=Call(content.merge_chunks, (options,)), finish_in_pool=False)


@functools.lru_cache(maxsize=256, typed=True)
def content_options(
    analysis_types: tuple[str, ...], with_rows: bool, k: int | None, top_n: int, seed: int
) -> content.ContentOptions:
    """One options object per distinct choice: tasks that share it share it in a merged pool
    call too, where pickle then writes it once instead of once per task."""
    return content.ContentOptions(
        analysis_types=analysis_types, with_rows=with_rows, k=k, top_n=top_n, seed=seed
    )


# --- analyze_relationships ------------------------------------------------------------------


def _check_relationships(params: dict[str, Any], context: TaskContext) -> dict[str, Any]:
    one_source(params, ("posts", "content_ids"), context)
    return params


def _plan_relationships(params: dict[str, Any], context: TaskContext) -> Plan:
    posts = posts_of(params, context)
    graph = graph_options(params)
    call = Call(relationships.analyze_with, (graph_input(posts), graph), max(len(posts), 1))
    return Plan(chunks=[call])


# --- generate_report ------------------------------------------------------------------------


def _check_report(params: dict[str, Any], context: TaskContext) -> dict[str, Any]:
    if one_source(params, REPORT_SOURCES, context) == "task_ids":
        _source_tasks(params["task_ids"], context)
    return params


def _source_tasks(task_ids: list[str], context: TaskContext) -> dict[str, Any]:
    """The finished analysis tasks a report is made from, by type; errors name the id."""
    found: dict[str, Any] = {}
    for index, task_id in enumerate(task_ids):
        field = f"task_ids[{index}]"
        try:
            task = context.manager.get(task_id)
        except errors.TaskNotFound:
            raise errors.TaskNotFound(
                f"{field}: no task {task_id} on this server", data={"field": field}
            ) from None
        except errors.TaskEvicted:
            raise errors.TaskEvicted(
                f"{field}: task {task_id} was evicted with its result", data={"field": field}
            ) from None
        if task.type not in SOURCE_TYPES:
            raise errors.InvalidParams(
                field, f"is a {task.type} task; reports are made from {' or '.join(SOURCE_TYPES)}"
            )
        if task.type in found:
            raise errors.InvalidParams(field, f"a second {task.type} task; give at most one")
        if not task.finished:
            raise errors.TaskNotFinished(
                f"{field}: task {task_id} is {task.status.value}; wait for it to complete",
                data={"field": field, "status": task.status.value},
            )
        if task.status is not TaskStatus.COMPLETED:
            raise errors.InvalidParams(
                field, f"task {task_id} {task.status.value}: it has no result"
            )
        found[task.type] = task
    return found


def _plan_report(params: dict[str, Any], context: TaskContext) -> Plan:
    task = context.task
    assert task is not None
    prune_reports(context.manager)

    def spec(source: str) -> report_build.ReportSpec:
        generated = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        return report_build.ReportSpec(
            fmt=params["format"],
            title=params.get("title") or "Analysis report",
            source=f"{source}; generated {generated}",
            path=str(report_files(context.manager).path_for(task.task_id)),
            url=f"/reports/{task.task_id}",
        )

    if "task_ids" in params:
        return _report_of_tasks(_source_tasks(params["task_ids"], context), spec)
    where = "from the content store" if "content_ids" in params else "given inline"
    posts = posts_of(params, context)
    return _report_of_posts(posts, params, spec(f"{len(posts):,} posts {where}"), context)


def _report_of_tasks(tasks: dict[str, Any], spec: Callable[[str], report_build.ReportSpec]) -> Plan:
    """One pool call renders the finished tasks' results, handed over as their records' JSON
    (parsed in the pool, not on the server's loop; rows left out)."""
    content_task, graph_task = tasks.get("analyze_content"), tasks.get("analyze_relationships")
    described = "; ".join(f"{t.type} task {t.task_id}" for t in tasks.values())
    content_record = content_task.record_json() if content_task is not None else None
    graph_record = graph_task.record_json() if graph_task is not None else None
    args = (spec(described), content_record, graph_record)
    return Plan(chunks=[Call(report_build.report_from_records, args)])


def _report_of_posts(
    posts: list[dict[str, Any]],
    params: dict[str, Any],
    spec: report_build.ReportSpec,
    context: TaskContext,
) -> Plan:
    """analyze_content's chunks and whole-set step and the graph, side by side; then the
    merge and the rendering as one pool finish step."""
    items = [
        (post.get("content_id", post.get("id", i)), post_text(post), created_of(post))
        for i, post in enumerate(posts)
    ]
    graph = graph_options(params)
    # Everything analyze_content offers, without per-post rows.
    options = content.ContentOptions(with_rows=False, k=params.get("k"), seed=params["seed"])
    size = context.settings.chunk_size
    if len(items) <= size:
        args = (spec, items, graph_input(posts), graph, options)
        return Plan(chunks=[Call(report_build.report_from_posts, args, max(len(items), 1))])
    chunks = [
        Call(content.analyze_whole_set, ([text for _, text, _ in items], options), len(items)),
        Call(report_build.relationships_partial, (graph_input(posts), graph), len(items)),
    ]
    for start in range(0, len(items), size):
        piece = items[start : start + size]
        chunks.append(Call(content.analyze_chunk, (piece, options), len(piece)))
    return Plan(chunks=chunks, finish=Call(report_build.finish_report, (spec, options)))


# --- registration ---------------------------------------------------------------------------


def register_analysis_types(registry: TaskRegistry) -> None:
    """Register ``analyze_relationships`` and ``generate_report``."""
    registry.register(
        TaskType(
            name="analyze_relationships",
            kind="cpu",
            description="Interaction graph of posts (replies and mentions) with networkx: "
            "central actors (PageRank, in-degree), Louvain communities, bridges, hashtag "
            "co-occurrence and the graph as capped node-link JSON.",
            params_schema=RELATIONSHIPS_SCHEMA,
            check=_check_relationships,
            plan=_plan_relationships,
            examples=[{"posts": EXAMPLE_POSTS}],
        )
    )
    registry.register(
        TaskType(
            name=REPORT_TYPE,
            kind="cpu",
            description="A report a person reads (html with charts, markdown or json) from "
            "posts, content_ids or finished analysis tasks; the result describes it and "
            "GET /reports/{task_id} serves it.",
            params_schema=REPORT_SCHEMA,
            check=_check_report,
            plan=_plan_report,
            examples=[{"posts": EXAMPLE_POSTS, "format": "html", "title": "Debate night"}],
        )
    )
