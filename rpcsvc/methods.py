"""The ``task.*`` JSON-RPC methods: thin wrappers that validate, call the TaskManager, answer."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from typing import Any

import orjson

from . import errors
from .config import Settings
from .manager import TaskManager
from .methodtable import MethodTable, Param
from .task import PRIORITY_LABELS, Task, TaskStatus

methods = MethodTable()

Record = orjson.Fragment | dict[str, Any]  # a task record, possibly already serialised

MAX_WAIT = 300
MAX_LIST_LIMIT = 1000
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


@dataclass(frozen=True)
class RpcContext:
    """What every method handler receives first."""

    manager: TaskManager
    settings: Settings


TASK_SCHEMA: dict[str, Any] = {
    "title": "Task",
    "type": "object",
    "required": ["task_id", "type", "status", "priority", "params", "created_at"],
    "properties": {
        "task_id": {"type": "string", "format": "uuid"},
        "type": {"type": "string"},
        "status": {"enum": [s.value for s in TaskStatus]},
        "priority": {"enum": PRIORITY_LABELS},
        "params": {"type": "object", "description": "As given; lists over 100 items -> {count}"},
        "timeout": {"type": ["number", "null"]},
        "created_at": {"type": "string", "format": "date-time"},
        "started_at": {"type": ["string", "null"], "format": "date-time"},
        "finished_at": {"type": ["string", "null"], "format": "date-time"},
        "progress": {
            "oneOf": [
                {"type": "null"},
                {
                    "type": "object",
                    "properties": {"done": {"type": "integer"}, "total": {"type": "integer"}},
                },
            ]
        },
        "result": {"description": "The task type's result, once completed"},
        "error": {
            "oneOf": [
                {"type": "null"},
                {
                    "type": "object",
                    "properties": {"type": {"type": "string"}, "message": {"type": "string"}},
                },
            ]
        },
    },
}

TASK_ID = Param("task_id", {"type": "string"}, "Id returned by task.create")


def _task(ctx: RpcContext, task_id: str) -> Task:
    """The task; a malformed id is InvalidParams, checked only when no task has it."""
    try:
        return ctx.manager.get(task_id)
    except errors.TaskNotFound:
        if not _UUID.match(task_id):
            raise errors.InvalidParams(
                "task_id", "must be a task id (a UUID4 string)", value=task_id
            ) from None
        raise


@methods.method(
    "task.create",
    summary="Create a task of a registered type; it runs when its priority and the pool allow.",
    params=[
        Param("type", {"type": "string"}, "A registered task type (see rpc.discover)"),
        Param("params", {"type": "object"}, "The task type's params", default={}),
        Param("priority", {"enum": PRIORITY_LABELS}, "Higher runs first", default="normal"),
        Param(
            "timeout",
            {"type": ["number", "null"], "exclusiveMinimum": 0},
            "Seconds the task may run before it fails with TaskTimeout",
            default=None,
        ),
    ],
    result=TASK_SCHEMA,
    errors=[
        errors.UnknownTaskType,
        errors.QueueFull,
        errors.ShuttingDown,
        errors.LimitExceeded,
        errors.ContentNotFound,
        errors.TaskNotFound,
        errors.TaskEvicted,
        errors.TaskNotFinished,
    ],
    examples=[
        {
            "name": "sentiment of two texts",
            "params": {
                "type": "analyze_content",
                "params": {"texts": ["What a great debate!", "Terrible policy."]},
            },
        }
    ],
)
def task_create(
    ctx: RpcContext, type: str, params: dict[str, Any], priority: str, timeout: float | None
) -> Record:
    task = ctx.manager.submit(type, params, priority=priority, timeout=timeout)
    return task.to_json()


@methods.method(
    "task.status",
    summary="The task's record, with its result once completed.",
    params=[TASK_ID],
    result=TASK_SCHEMA,
    errors=[errors.TaskNotFound, errors.TaskEvicted],
)
def task_status(ctx: RpcContext, task_id: str) -> Record:
    return _task(ctx, task_id).to_json()


@methods.method(
    "task.list",
    summary="Tasks newest first, optionally filtered, without results; page with next_cursor.",
    params=[
        Param("status", {"enum": [*(s.value for s in TaskStatus), None]}, default=None),
        Param("type", {"type": ["string", "null"]}, default=None),
        Param("limit", {"type": "integer", "minimum": 1, "maximum": MAX_LIST_LIMIT}, default=100),
        Param("cursor", {"type": ["string", "null"]}, "next_cursor of the previous page", None),
    ],
    result={
        "type": "object",
        "properties": {
            "tasks": {"type": "array", "items": TASK_SCHEMA},
            "next_cursor": {"type": ["string", "null"]},
        },
    },
)
def task_list(
    ctx: RpcContext, status: str | None, type: str | None, limit: int, cursor: str | None
) -> dict[str, Any]:
    before = None
    if cursor is not None:
        if not cursor.isdigit():
            raise errors.InvalidParams("cursor", "is not a cursor returned by task.list")
        before = int(cursor)
    tasks, next_seq = ctx.manager.list_tasks(
        status=status, type=type, limit=limit, before_seq=before
    )
    return {
        "tasks": [t.to_json(with_result=False) for t in tasks],
        "next_cursor": None if next_seq is None else str(next_seq),
    }


@methods.method(
    "task.cancel",
    summary="Cancel a task: pending ones never run, running ones are stopped. "
    "Cancelling a finished task changes nothing.",
    params=[TASK_ID],
    result=TASK_SCHEMA,
    errors=[errors.TaskNotFound, errors.TaskEvicted],
)
def task_cancel(ctx: RpcContext, task_id: str) -> Record:
    return ctx.manager.cancel(_task(ctx, task_id).task_id).to_json()


@methods.method(
    "task.wait",
    summary="The record once the task has finished, or as it is when the timeout passes.",
    params=[
        TASK_ID,
        Param(
            "timeout",
            {"type": "number", "minimum": 0, "maximum": MAX_WAIT},
            "Seconds to wait at most",
            default=30,
        ),
    ],
    result=TASK_SCHEMA,
    errors=[errors.TaskNotFound, errors.TaskEvicted],
)
def task_wait(ctx: RpcContext, task_id: str, timeout: float) -> Record | asyncio.Future[Record]:
    task = _task(ctx, task_id)
    if task.finished or timeout == 0:
        return task.to_json()  # answered at once
    return task.record_when_finished(timeout)
