"""The ``content.*`` JSON-RPC methods: the content store as batch clients and analysts see it.

Registered into :data:`rpcsvc.methods.methods` on import (``rpcsvc.app`` imports this module).
The store itself is :class:`rpcsvc.content.ContentStore`, found in ``manager.resources``.
"""

from __future__ import annotations

import asyncio
from typing import Any

from . import errors
from .content import MAX_LIST_LIMIT, ContentStore, store_of, validate_posts
from .methods import RpcContext, methods
from .methodtable import Param

# Validating costs ~10 us a post (bench/bench_collection.py): past this many posts (~20 ms),
# a thread does it, so the loop keeps answering other calls (pure Python: it yields the GIL).
VALIDATE_IN_THREAD = 2_000

_NULLABLE_STR = {"type": ["string", "null"]}
_COUNT = {"type": ["integer", "null"]}

POST_SCHEMA: dict[str, Any] = {
    "title": "Post",
    "description": "A normalised post, the same for every platform",
    "type": "object",
    "required": ["content_id", "platform", "id", "author", "text", "created_at"],
    "properties": {
        "content_id": {"type": "string", "description": "platform:id, the store's key"},
        "platform": {"type": "string"},
        "id": {"type": "string", "description": "The platform's own id"},
        "author": {
            "type": "object",
            "properties": {"id": _NULLABLE_STR, "handle": _NULLABLE_STR, "name": _NULLABLE_STR},
        },
        "text": {"type": "string"},
        "created_at": {
            "type": ["string", "null"],
            "description": "UTC, whole seconds, e.g. 2022-11-08T00:00:06Z",
        },
        "reply_to": {
            "type": ["object", "null"],
            "properties": {
                "post": {"type": "string", "description": "content_id of the parent"},
                "author": _NULLABLE_STR,
            },
        },
        "mentions": {"type": "array", "items": {"type": "string"}},
        "hashtags": {"type": "array", "items": {"type": "string"}},
        "urls": {"type": "array", "items": {"type": "string"}},
        "metrics": {
            "type": "object",
            "description": "null where the platform does not say",
            "properties": {"replies": _COUNT, "reposts": _COUNT, "likes": _COUNT},
        },
        "lang": _NULLABLE_STR,
        "url": _NULLABLE_STR,
        "raw": {"description": "The platform's own object, when collected with include_raw"},
    },
}

CONTENT_IDS = Param(
    "content_ids",
    {"type": "array", "items": {"type": "string"}},
    "Ids as content.add or collect_platform_data returned them (platform:id)",
)
PLATFORM = Param("platform", _NULLABLE_STR, "Only posts of this platform", default=None)

EXAMPLE_POST = {
    "id": "1",
    "text": "Polls close at 8pm, go vote!",
    "author": "alice",
    "created_at": "2022-11-08T18:00:00Z",
    "hashtags": ["vote"],
}
EXAMPLE_STORED = {
    "content_id": "upload:1",
    "platform": "upload",
    "id": "1",
    "author": {"id": None, "handle": "alice", "name": None},
    "text": "Polls close at 8pm, go vote!",
    "created_at": "2022-11-08T18:00:00Z",
    "reply_to": None,
    "mentions": [],
    "hashtags": ["vote"],
    "urls": [],
    "metrics": {"replies": None, "reposts": None, "likes": None},
    "lang": None,
    "url": None,
}


def _store(ctx: RpcContext) -> ContentStore:
    return store_of(ctx.manager)


def _check_count(name: str, count: int, ctx: RpcContext) -> None:
    limit = ctx.settings.max_posts_per_task
    if count > limit:
        raise errors.LimitExceeded(
            f"{name}: {count} items exceeds max_posts_per_task={limit}",
            data={"field": name, "max": limit, "got": count},
        )


@methods.method(
    "content.add",
    summary="Store posts (a batch upload); a post already stored is updated, not duplicated. "
    "All or nothing: one bad post or a full store adds none.",
    params=[
        Param(
            "posts",
            {"type": "array", "items": {"type": "object"}},
            "Posts in the normalised shape (see content.get). platform and content_id may be "
            "left out (platform 'upload', content_id 'upload:<id>'); author may be a handle; "
            "created_at may be ISO 8601 or epoch seconds; other fields go under raw.",
        )
    ],
    result={
        "title": "Added",
        "type": "object",
        "required": ["added", "updated", "content_ids"],
        "properties": {
            "added": {"type": "integer", "description": "Posts new to the store"},
            "updated": {"type": "integer", "description": "Posts that replaced a stored one"},
            "content_ids": {
                "type": "array",
                "items": {"type": "string"},
                "description": "One per post, in input order",
            },
        },
    },
    errors=[errors.InvalidParams, errors.ContentStoreFull, errors.LimitExceeded],
    examples=[
        {
            "name": "upload one post",
            "params": {"posts": [EXAMPLE_POST]},
            "result": {"added": 1, "updated": 0, "content_ids": ["upload:1"]},
        }
    ],
)
async def content_add(ctx: RpcContext, posts: list[Any]) -> dict[str, Any]:
    _check_count("posts", len(posts), ctx)
    if len(posts) > VALIDATE_IN_THREAD:
        validated = await asyncio.to_thread(validate_posts, posts)
    else:
        validated = validate_posts(posts)
    # Storing stays on the loop: the store is not thread-safe, and adding is the cheap part.
    return _store(ctx).add(validated)


@methods.method(
    "content.get",
    summary="The stored posts, in the order asked. Fails, naming the unknown ids, if any is "
    "not stored.",
    params=[CONTENT_IDS],
    result={"title": "Posts", "type": "array", "items": POST_SCHEMA},
    errors=[errors.ContentNotFound, errors.LimitExceeded],
    examples=[
        {
            "name": "one uploaded post",
            "params": {"content_ids": ["upload:1"]},
            "result": [EXAMPLE_STORED],
        }
    ],
)
def content_get(ctx: RpcContext, content_ids: list[str]) -> list[dict[str, Any]]:
    _check_count("content_ids", len(content_ids), ctx)
    return _store(ctx).get(content_ids)


@methods.method(
    "content.list",
    summary="Stored posts in the order they were added, a page at a time; posts added while "
    "paging come at the end, none is skipped or repeated.",
    params=[
        PLATFORM,
        Param("author", _NULLABLE_STR, "A handle (any case) or an author id", default=None),
        Param(
            "since",
            _NULLABLE_STR,
            "ISO 8601: only posts created at or after it",
            default=None,
        ),
        Param("limit", {"type": "integer", "minimum": 1, "maximum": MAX_LIST_LIMIT}, default=100),
        Param("cursor", _NULLABLE_STR, "next_cursor of the previous page", default=None),
    ],
    result={
        "title": "Page",
        "type": "object",
        "required": ["posts", "next_cursor"],
        "properties": {
            "posts": {"type": "array", "items": POST_SCHEMA},
            "next_cursor": {
                "type": ["string", "null"],
                "description": "Pass it as cursor for the next page; null on the last page",
            },
        },
    },
    errors=[errors.InvalidParams],
    examples=[
        {
            "name": "the first page of reddit posts",
            "params": {"platform": "reddit", "since": "2022-11-08T00:00:00Z", "limit": 2},
        }
    ],
)
def content_list(
    ctx: RpcContext,
    platform: str | None,
    author: str | None,
    since: str | None,
    limit: int,
    cursor: str | None,
) -> dict[str, Any]:
    return _store(ctx).list(
        platform=platform, author=author, since=since, limit=limit, cursor=cursor
    )


@methods.method(
    "content.count",
    summary="How many posts the content store holds, of one platform or in all.",
    params=[PLATFORM],
    result={"title": "Count", "type": "integer", "minimum": 0},
    examples=[
        {"name": "every post", "params": {}},
        {"name": "reddit posts", "params": {"platform": "reddit"}},
    ],
)
def content_count(ctx: RpcContext, platform: str | None) -> int:
    return _store(ctx).count(platform=platform)
