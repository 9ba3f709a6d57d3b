"""The built-in task types and their params schemas."""

from __future__ import annotations

import asyncio
from typing import Any

from workers import diagnostics

from . import errors
from .analysis import plan_content, register_analysis_types
from .analysis_params import ANALYSIS_TYPES, CONTENT_OPTIONS_SCHEMA
from .collect import register_collection_types
from .manager import TaskContext
from .registry import Call, Plan, TaskRegistry, TaskType

POST_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["text"],
    "properties": {
        "id": {"type": ["string", "integer"]},
        "text": {"type": "string"},
        "created_at": {
            "type": ["string", "number", "null"],
            "description": "ISO 8601 or epoch seconds; dated posts give sentiment by day/hour",
        },
    },
}

ANALYZE_CONTENT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "texts": {"type": "array", "items": {"type": "string"}},
        "posts": {"type": "array", "items": POST_SCHEMA},
        "content_ids": {
            "type": "array",
            "items": {"type": "string"},
            "description": "Posts in the content store; result rows take the content_id as id",
        },
        "analysis_types": {
            "type": "array",
            "items": {"enum": ANALYSIS_TYPES},
            "minItems": 1,
            "uniqueItems": True,
            "default": ANALYSIS_TYPES,
        },
        "detail": {
            "enum": ["posts", "summary"],
            "default": "posts",
            "description": "'summary' leaves the per-post rows out of the result",
        },
        **CONTENT_OPTIONS_SCHEMA,
    },
}


def _check_content(params: dict[str, Any], context: TaskContext) -> dict[str, Any]:
    sources = [key for key in ("texts", "posts", "content_ids") if key in params]
    if len(sources) != 1:
        raise errors.InvalidParams(
            "params", "give exactly one of texts, posts or content_ids", given=sources
        )
    source = sources[0]
    count = len(params[source])
    limit = context.settings.max_posts_per_task
    if count > limit:
        raise errors.LimitExceeded(
            f"params.{source}: {count} items exceeds max_posts_per_task={limit}",
            data={"field": f"params.{source}", "max": limit, "got": count},
        )
    return params


def _plan_content(params: dict[str, Any], context: TaskContext) -> Plan:
    return plan_content(params, context)


def builtin_registry() -> TaskRegistry:
    registry = TaskRegistry()
    registry.register(
        TaskType(
            name="analyze_content",
            kind="cpu",
            description="Sentiment (VADER), topics (TF-IDF + NMF), entities and key phrases "
            "of posts or texts, per post and in aggregate; large inputs are split into chunks "
            "across the worker processes, topics and keywords run once over the whole set.",
            params_schema=ANALYZE_CONTENT_SCHEMA,
            check=_check_content,
            plan=_plan_content,
            examples=[{"texts": ["I love this!", "This is awful."]}],
        )
    )
    register_collection_types(registry)
    register_analysis_types(registry)
    return registry


def _single_call(fn: Any, *arg_names: str) -> Any:
    def plan(params: dict[str, Any], context: TaskContext) -> Plan:
        return Plan(chunks=[Call(fn, tuple(params[name] for name in arg_names))])

    return plan


async def _echo(params: dict[str, Any], context: TaskContext) -> Any:
    if params.get("seconds"):
        await asyncio.sleep(params["seconds"])
    return params.get("value")


def register_debug_types(registry: TaskRegistry) -> None:
    """``debug.*`` types for tests and operators; never on unless ``debug_tasks`` is set."""
    seconds = {"type": "number", "minimum": 0, "maximum": 3600}
    for task_type in (
        TaskType(
            name="debug.sleep",
            kind="cpu",
            description="Hold a worker process for `seconds`.",
            params_schema={
                "type": "object",
                "required": ["seconds"],
                "additionalProperties": False,
                "properties": {"seconds": seconds},
            },
            plan=_single_call(diagnostics.sleep, "seconds"),
        ),
        TaskType(
            name="debug.fail",
            kind="cpu",
            description="Raise ValueError(message) in a worker process.",
            params_schema={
                "type": "object",
                "additionalProperties": False,
                "properties": {"message": {"type": "string", "default": "debug.fail"}},
            },
            plan=_single_call(diagnostics.fail, "message"),
        ),
        TaskType(
            name="debug.crash",
            kind="cpu",
            description="Kill the worker process (exit code, or -N for signal N).",
            params_schema={
                "type": "object",
                "additionalProperties": False,
                "properties": {"exit_code": {"type": "integer", "default": 1}},
            },
            plan=_single_call(diagnostics.crash, "exit_code"),
        ),
        TaskType(
            name="debug.echo",
            kind="io",
            description="Return `value` from the event loop, after `seconds` if given.",
            params_schema={
                "type": "object",
                "additionalProperties": False,
                "properties": {"value": {}, "seconds": seconds},
            },
            run=_echo,
        ),
    ):
        registry.register(task_type)
