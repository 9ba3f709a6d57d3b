"""The analysis task types: how ``analyze_content`` is planned, ``analyze_relationships`` and
``generate_report``.

Bulk inputs are split into chunks of ``chunk_size`` posts across the workers. The whole-set
steps (topics, keywords, the interaction graph) need every post at once; they do not need the
chunks' results, so each runs as one more pool call *beside* the chunks rather than after
them, and the merge left for the end is sums and concatenation (cheap in the server), except
for a report, whose rendering runs as a pool finish step.
"""

from __future__ import annotations

import time
from typing import Any

from workers import content, relationships, report_build
from workers.relationships import post_text

from . import errors
from .content import resolve_posts
from .manager import TaskContext
from .registry import Call, Plan, TaskRegistry, TaskType
from .reports import REPORT_TYPE, prune_reports, report_files
from .task import TaskStatus

ANALYSIS_TYPES = list(content.ANALYSIS_TYPES)

# analyze_content's options beside its input; tasktypes.ANALYZE_CONTENT_SCHEMA includes them.
CONTENT_OPTIONS_SCHEMA: dict[str, Any] = {
    "k": {
        "type": ["integer", "null"],
        "minimum": 1,
        "maximum": 50,
        "default": None,
        "description": "Number of topics; null chooses it from the data (2..12)",
    },
    "top_n": {
        "type": "integer",
        "minimum": 1,
        "maximum": 200,
        "default": 20,
        "description": "Length of the entities, hashtags and keywords lists",
    },
    "seed": {"type": "integer", "default": 0, "description": "Seed of the topic model"},
}

GRAPH_OPTIONS_SCHEMA: dict[str, Any] = {
    "max_graph_nodes": {
        "type": "integer",
        "minimum": 1,
        "maximum": 5000,
        "default": 500,
        "description": "Nodes kept in the node-link graph (highest PageRank first)",
    },
    "seed": {"type": "integer", "default": 0, "description": "Seed of Louvain communities"},
}

_ANY_POSTS = {
    "type": "array",
    "items": {"type": "object"},
    "description": "Posts in any shape: normalised, Reddit (Pushshift) or Mastodon",
}
_CONTENT_IDS = {
    "type": "array",
    "items": {"type": "string"},
    "description": "Posts in the content store",
}

RELATIONSHIPS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "posts": _ANY_POSTS,
        "content_ids": _CONTENT_IDS,
        **GRAPH_OPTIONS_SCHEMA,
        "top_n": {
            "type": "integer",
            "minimum": 1,
            "maximum": 100,
            "default": 10,
            "description": "Entries in each ranking (central actors, communities, bridges)",
        },
    },
}

REPORT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "format": {"enum": ["html", "markdown", "json"], "default": "html"},
        "title": {"type": "string", "minLength": 1, "maxLength": 200},
        "task_ids": {
            "type": "array",
            "items": {"type": "string"},
            "minItems": 1,
            "maxItems": 2,
            "uniqueItems": True,
            "description": "Finished analyze_content and/or analyze_relationships tasks "
            "(at most one of each)",
        },
        "posts": _ANY_POSTS,
        "content_ids": _CONTENT_IDS,
        "k": CONTENT_OPTIONS_SCHEMA["k"],
        **GRAPH_OPTIONS_SCHEMA,
    },
}
REPORT_SOURCES = ("task_ids", "posts", "content_ids")

EXAMPLE_POSTS = [
    {"id": "1", "author": "ann", "text": "Great debate tonight! @bob #midterms"},
    {"id": "2", "author": "bob", "text": "Agreed, vote early", "reply_to": {"post": "1"}},
]
SOURCE_TYPES = ("analyze_content", "analyze_relationships")


# --- analyze_content ------------------------------------------------------------------------


def content_items(params: dict[str, Any], context: TaskContext) -> list[content.Item]:
    """``(id, text, created)`` of each post of ``texts``, ``posts`` or ``content_ids``."""
    if "texts" in params:
        return [(i, text, None) for i, text in enumerate(params["texts"])]
    if "content_ids" in params:
        stored = resolve_posts(context, params["content_ids"])
        return [(p["content_id"], p["text"] or "", p.get("created_at")) for p in stored]
    return [
        (post.get("id", i), post["text"], post.get("created_at", post.get("created_utc")))
        for i, post in enumerate(params["posts"])
    ]


def plan_content(params: dict[str, Any], context: TaskContext) -> Plan:
    """One pool call for a small task; else per-post chunks, the whole-set step beside them,
    and the merge in the server."""
    items = content_items(params, context)
    options = content.ContentOptions(
        analysis_types=tuple(params["analysis_types"]),
        with_rows=params["detail"] == "posts",
        k=params.get("k"),
        top_n=params.get("top_n", 20),
        seed=params.get("seed", 0),
    )
    size = context.settings.chunk_size
    if len(items) <= size:
        return Plan(chunks=[Call(content.analyze_posts, (items, options), max(len(items), 1))])
    chunks = []
    if options.whole_set:
        # First in the queue: the longest single call starts while the chunks share the rest.
        texts = [text for _, text, _ in items]
        chunks.append(Call(content.analyze_whole_set, (texts, options), len(items)))
    for start in range(0, len(items), size):
        piece = items[start : start + size]
        chunks.append(Call(content.analyze_chunk, (piece, options), len(piece)))
    return Plan(chunks=chunks, finish=Call(content.merge_chunks, (options,)), finish_in_pool=False)


# --- analyze_relationships ------------------------------------------------------------------


def _one_source(params: dict[str, Any], sources: tuple[str, ...], context: TaskContext) -> str:
    given = [key for key in sources if key in params]
    if len(given) != 1:
        raise errors.InvalidParams(
            "params", f"give exactly one of {', '.join(sources)}", given=given
        )
    source = given[0]
    limit = context.settings.max_posts_per_task
    if source != "task_ids" and len(params[source]) > limit:
        count = len(params[source])
        raise errors.LimitExceeded(
            f"params.{source}: {count} items exceeds max_posts_per_task={limit}",
            data={"field": f"params.{source}", "max": limit, "got": count},
        )
    return source


def _check_relationships(params: dict[str, Any], context: TaskContext) -> dict[str, Any]:
    _one_source(params, ("posts", "content_ids"), context)
    return params


def _posts(params: dict[str, Any], context: TaskContext) -> list[dict[str, Any]]:
    if "content_ids" in params:
        return resolve_posts(context, params["content_ids"])
    return list(params["posts"])


def _graph_options(params: dict[str, Any]) -> relationships.GraphOptions:
    return relationships.GraphOptions(
        max_graph_nodes=params["max_graph_nodes"],
        top_n=params.get("top_n", 10),
        seed=params["seed"],
    )


def _plan_relationships(params: dict[str, Any], context: TaskContext) -> Plan:
    posts = _posts(params, context)
    graph = _graph_options(params)
    return Plan(chunks=[Call(relationships.analyze_with, (posts, graph), max(len(posts), 1))])


# --- generate_report ------------------------------------------------------------------------


def _check_report(params: dict[str, Any], context: TaskContext) -> dict[str, Any]:
    if _one_source(params, REPORT_SOURCES, context) == "task_ids":
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
    manager, task = context.manager, context.task
    assert task is not None
    prune_reports(manager)
    fmt = params["format"]
    title = params.get("title") or "Analysis report"
    spec_args = (fmt, title)
    path = str(report_files(manager).path_for(task.task_id))
    url = f"/reports/{task.task_id}"
    generated = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    if "task_ids" in params:
        tasks = _source_tasks(params["task_ids"], context)
        content_task, graph_task = tasks.get("analyze_content"), tasks.get("analyze_relationships")
        content_result = (
            {k: v for k, v in content_task.result.items() if k != "posts"} if content_task else None
        )
        described = "; ".join(f"{t.type} task {t.task_id}" for t in tasks.values())
        spec = report_build.ReportSpec(*spec_args, f"{described}; generated {generated}", path, url)
        call = Call(
            report_build.report_from_results,
            (spec, content_result, graph_task.result if graph_task else None),
        )
        return Plan(chunks=[call])
    posts = _posts(params, context)
    items = [
        (post.get("content_id", post.get("id", i)), post_text(post), _created(post))
        for i, post in enumerate(posts)
    ]
    where = "from the content store" if "content_ids" in params else "given inline"
    source = f"{len(posts):,} posts {where}; generated {generated}"
    spec = report_build.ReportSpec(*spec_args, source, path, url)
    graph = _graph_options(params)
    # Everything analyze_content offers, without per-post rows.
    options = content.ContentOptions(with_rows=False, k=params.get("k"), seed=params["seed"])
    size = context.settings.chunk_size
    if len(items) <= size:
        args = (spec, items, posts, graph, options)
        return Plan(chunks=[Call(report_build.report_from_posts, args, max(len(items), 1))])
    chunks = [
        Call(content.analyze_whole_set, ([text for _, text, _ in items], options), len(items)),
        Call(report_build.relationships_partial, (posts, graph), len(items)),
    ]
    for start in range(0, max(len(items), 1), size):
        piece = items[start : start + size]
        chunks.append(Call(content.analyze_chunk, (piece, options), max(len(piece), 1)))
    return Plan(chunks=chunks, finish=Call(report_build.finish_report, (spec, options)))


def _created(post: dict[str, Any]) -> object:
    for key in ("created_at", "created_utc"):
        if post.get(key) is not None:
            return post[key]
    return None


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
