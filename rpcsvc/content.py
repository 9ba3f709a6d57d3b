"""The content store: collected and uploaded posts, in memory, keyed by ``content_id``.

Posts are normalised posts (see ``workers.collection.base``). Adding a post whose
``content_id`` is already stored replaces it in place: collecting twice updates, never
duplicates. The store is bounded by ``max_posts``; an ``add`` that would pass it adds nothing
and raises :class:`ContentStoreFull`.

Uploaded posts (``content.add``) may leave out ``platform`` and ``content_id``: the platform
then defaults to ``upload`` and the id to ``upload:<id>``; a ``content_id`` alone implies both
(``reddit:t1_x`` -> platform ``reddit``, id ``t1_x``). ``author`` may be a plain handle string.
``created_at`` may be ISO 8601 (an offset-less time is UTC) or epoch seconds; it is stored as
``YYYY-MM-DDTHH:MM:SSZ``.

``list`` pages in insertion order (oldest addition first), so posts added while a client
pages through appear at the end and nothing is skipped or repeated; an update keeps a post's
place. The cursor is opaque.
"""

from __future__ import annotations

import re
from bisect import bisect_left, insort
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from workers.collection.base import POST_FIELDS, Post, format_time, parse_time

from .errors import ContentNotFound, ContentStoreFull, InvalidParams

UPLOAD_PLATFORM = "upload"
MAX_LIST_LIMIT = 1000
# The server's store sits in ``TaskManager.resources`` under this key (see rpcsvc.collect).
CONTENT_RESOURCE = "content"

_PLATFORM_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")
_FIELDS = frozenset(POST_FIELDS)
_AUTHOR_FIELDS = frozenset({"id", "handle", "name"})
_CANONICAL_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")
_METRICS = ("replies", "reposts", "likes")
_EMPTY_METRICS: dict[str, int | None] = dict.fromkeys(_METRICS)


# Field paths in errors (``posts[3].author.id``) are only formatted when there is an error:
# building them eagerly cost a third of the validation time.


def _optional_str(value: Any, where: str, key: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise InvalidParams(f"{where}.{key}", "must be a string or null")


def _param_str(value: Any, name: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise InvalidParams(name, "must be a string or null")


def _id_str(value: Any, where: str, key: str) -> str:
    if isinstance(value, str) and value:
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise InvalidParams(f"{where}.{key}", "must be a non-empty string or an integer")


def _str_list(value: Any, where: str, key: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise InvalidParams(f"{where}.{key}", "must be a list of strings")
    for index, item in enumerate(value):
        if not isinstance(item, str):
            raise InvalidParams(f"{where}.{key}[{index}]", "must be a string")
    return value


def _author(value: Any, where: str) -> dict[str, str | None]:
    if value is None:
        return {"id": None, "handle": None, "name": None}
    if isinstance(value, str):
        return {"id": None, "handle": value, "name": None}
    if not isinstance(value, dict):
        raise InvalidParams(f"{where}.author", "must be an object {id, handle, name} or a string")
    for key in value.keys() - _AUTHOR_FIELDS:
        raise InvalidParams(f"{where}.author.{key}", "unknown field; known: id, handle, name")
    author_id = value.get("id")
    return {
        "id": None if author_id is None else _id_str(author_id, f"{where}.author", "id"),
        "handle": _optional_str(value.get("handle"), where, "author.handle"),
        "name": _optional_str(value.get("name"), where, "author.name"),
    }


def _metrics(value: Any, where: str) -> dict[str, int | None]:
    if value is None:
        return dict(_EMPTY_METRICS)
    if not isinstance(value, dict):
        raise InvalidParams(f"{where}.metrics", "must be an object {replies, reposts, likes}")
    for key, number in value.items():
        if key not in _EMPTY_METRICS:
            raise InvalidParams(
                f"{where}.metrics.{key}", "unknown field; known: replies, reposts, likes"
            )
        if number is not None and (isinstance(number, bool) or not isinstance(number, int)):
            raise InvalidParams(f"{where}.metrics.{key}", "must be an integer or null")
    get = value.get
    return {"replies": get("replies"), "reposts": get("reposts"), "likes": get("likes")}


def _reply_to(value: Any, where: str) -> dict[str, str | None] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidParams(f"{where}.reply_to", "must be an object {post, author} or null")
    for key in value.keys() - {"post", "author"}:
        raise InvalidParams(f"{where}.reply_to.{key}", "unknown field; known: post, author")
    return {
        "post": _id_str(value.get("post"), f"{where}.reply_to", "post"),
        "author": _optional_str(value.get("author"), f"{where}.reply_to", "author"),
    }


def _identity(post: dict[str, Any], where: str) -> tuple[str, str]:
    """(platform, native id) from ``platform``/``id``/``content_id``, checked for agreement."""
    platform = _optional_str(post.get("platform"), where, "platform")
    content_id = _optional_str(post.get("content_id"), where, "content_id")
    native = post.get("id")
    if native is not None:
        native = _id_str(native, where, "id")
    if content_id is not None:
        prefix, sep, rest = content_id.partition(":")
        if not sep or not prefix or not rest:
            raise InvalidParams(f"{where}.content_id", "must look like 'platform:id'")
        if platform is not None and prefix != platform:
            raise InvalidParams(
                f"{where}.content_id", f"starts with {prefix!r} but platform is {platform!r}"
            )
        if native is not None and rest != native:
            raise InvalidParams(f"{where}.content_id", f"ends with {rest!r} but id is {native!r}")
        platform, native = prefix, rest
    if native is None:
        raise InvalidParams(f"{where}.id", "is required when content_id is missing")
    platform = platform or UPLOAD_PLATFORM
    if not _PLATFORM_RE.fullmatch(platform):
        raise InvalidParams(f"{where}.platform", "must be 1-32 of a-z, 0-9, _ and -")
    return platform, native


def _created_at(value: Any, where: str) -> str | None:
    if value is None or (isinstance(value, str) and _CANONICAL_TIME.fullmatch(value)):
        return value
    moment = parse_time(value)
    if moment is None:
        raise InvalidParams(f"{where}.created_at", "must be an ISO 8601 time or epoch seconds")
    return format_time(moment)


def validate_post(post: Any, *, field: str) -> Post:
    """A complete normalised post from ``post``, or InvalidParams naming ``field.<key>``."""
    if not isinstance(post, dict):
        raise InvalidParams(field, "must be an object (a post)")
    for key in post.keys() - _FIELDS:
        raise InvalidParams(
            f"{field}.{key}",
            f"unknown field; known: {', '.join(POST_FIELDS)} (put anything else under raw)",
        )
    text = post.get("text")
    if not isinstance(text, str):
        raise InvalidParams(f"{field}.text", "is required" if text is None else "must be a string")
    platform, native = _identity(post, field)
    hashtags = _str_list(post.get("hashtags"), field, "hashtags")
    normalised: Post = {
        "content_id": f"{platform}:{native}",
        "platform": platform,
        "id": native,
        "author": _author(post.get("author"), field),
        "text": text,
        "created_at": _created_at(post.get("created_at"), field),
        "reply_to": _reply_to(post.get("reply_to"), field),
        "mentions": _str_list(post.get("mentions"), field, "mentions"),
        "hashtags": [t.lstrip("#") for t in hashtags] if hashtags else hashtags,
        "urls": _str_list(post.get("urls"), field, "urls"),
        "metrics": _metrics(post.get("metrics"), field),
        "lang": _optional_str(post.get("lang"), field, "lang"),
        "url": _optional_str(post.get("url"), field, "url"),
    }
    if "raw" in post:
        normalised["raw"] = post["raw"]
    return normalised


def validate_posts(posts: Any) -> ValidatedPosts:
    """Every post of a ``content.add`` call, checked and completed; safe to run in a thread."""
    if not isinstance(posts, list):
        raise InvalidParams("posts", "must be a list of posts")
    return ValidatedPosts(validate_post(post, field=f"posts[{i}]") for i, post in enumerate(posts))


class ValidatedPosts(list[Post]):
    """Posts that went through :func:`validate_posts`; ``ContentStore.add`` takes them as is.

    It lets a server validate a big upload in a worker thread and store it on the event loop.
    Nothing from the network can be one: JSON decodes to plain lists.
    """


def _author_keys(post: Post) -> set[str]:
    author = post["author"]
    return {key.lower() for key in (author["handle"], author["id"]) if key}


class ContentStore:
    """Posts by ``content_id``, in insertion order, at most ``max_posts`` of them."""

    def __init__(self, *, max_posts: int = 2_000_000) -> None:
        if max_posts < 1:
            raise ValueError("max_posts must be at least 1")
        self.max_posts = max_posts
        self._posts: dict[str, tuple[int, Post]] = {}  # content_id -> (position, post)
        self._order: list[str] = []  # position -> content_id
        self._by_platform: dict[str, list[int]] = {}
        self._by_author: dict[str, list[int]] = {}  # lower-cased handle or author id

    def __len__(self) -> int:
        return len(self._posts)

    def __contains__(self, content_id: object) -> bool:
        return content_id in self._posts

    def __repr__(self) -> str:
        platforms = ", ".join(f"{p}={len(ids)}" for p, ids in sorted(self._by_platform.items()))
        return f"<ContentStore {len(self)}/{self.max_posts} posts ({platforms})>"

    def add(self, posts: Any) -> dict[str, Any]:
        """Validate and store posts: ``{"added", "updated", "content_ids"}`` (input order).

        ``posts`` already passed through :func:`validate_posts` are not checked again.
        """
        validated = posts if isinstance(posts, ValidatedPosts) else validate_posts(posts)
        new_ids = {p["content_id"] for p in validated} - self._posts.keys()
        if len(self._posts) + len(new_ids) > self.max_posts:
            raise ContentStoreFull(
                f"Content store full: it holds {len(self._posts)} of at most {self.max_posts} "
                f"posts and this would add {len(new_ids)} more",
                data={
                    "max_posts": self.max_posts,
                    "count": len(self._posts),
                    "adding": len(new_ids),
                },
            )
        for post in validated:
            self._put(post)
        return {
            "added": len(new_ids),
            "updated": len(validated) - len(new_ids),
            "content_ids": [p["content_id"] for p in validated],
        }

    def _put(self, post: Post) -> None:
        content_id = post["content_id"]
        known = self._posts.get(content_id)
        if known is None:
            position = len(self._order)
            self._order.append(content_id)
            self._by_platform.setdefault(post["platform"], []).append(position)
            for key in _author_keys(post):
                self._by_author.setdefault(key, []).append(position)
        else:
            position = known[0]
            # An update may name another author; stale index entries are filtered on read.
            for key in _author_keys(post) - _author_keys(known[1]):
                insort(self._by_author.setdefault(key, []), position)
        self._posts[content_id] = (position, post)

    def get(self, content_ids: Any) -> list[Post]:
        """The posts, in the order asked; ContentNotFound lists unknown ids in ``data.missing``.

        The returned dicts are the stored ones: treat them as read-only.
        """
        if not isinstance(content_ids, list):
            raise InvalidParams("content_ids", "must be a list of content ids")
        for index, content_id in enumerate(content_ids):
            if not isinstance(content_id, str):
                raise InvalidParams(f"content_ids[{index}]", "must be a string")
        ids: list[str] = content_ids
        missing = [cid for cid in ids if cid not in self._posts]
        if missing:
            raise ContentNotFound(
                f"{len(missing)} of {len(ids)} content ids are not in the content store",
                data={"missing": missing[:1000], "missing_count": len(missing)},
            )
        return [self._posts[cid][1] for cid in ids]

    def count(self, *, platform: str | None = None) -> int:
        if platform is None:
            return len(self._posts)
        return len(self._by_platform.get(_param_str(platform, "platform") or "", ()))

    def list(
        self,
        *,
        platform: str | None = None,
        author: str | None = None,
        since: str | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> dict[str, Any]:
        """``{"posts", "next_cursor"}``: matching posts in insertion order, ``limit`` a page.

        ``author`` matches a handle (any case) or an author id; ``since`` (ISO 8601) keeps
        posts created at or after it; ``next_cursor`` is null on the last page.
        """
        platform = _param_str(platform, "platform")
        author_key = (_param_str(author, "author") or "").lower() or None
        since_text = None
        if since is not None:
            moment = parse_time(since) if isinstance(since, str) else None
            if moment is None:
                raise InvalidParams(
                    "since", "must be an ISO 8601 time such as 2022-11-08T00:00:00Z"
                )
            since_text = format_time(moment)
        if (
            isinstance(limit, bool)
            or not isinstance(limit, int)
            or not 1 <= limit <= MAX_LIST_LIMIT
        ):
            raise InvalidParams("limit", f"must be an integer from 1 to {MAX_LIST_LIMIT}")
        start = self._decode_cursor(cursor)

        candidates: Iterable[int]
        if platform is not None or author_key is not None:
            lists = []
            if platform is not None:
                lists.append(self._by_platform.get(platform, []))
            if author_key is not None:
                lists.append(self._by_author.get(author_key, []))
            shortest = min(lists, key=len)
            candidates = (shortest[i] for i in range(bisect_left(shortest, start), len(shortest)))
        else:
            candidates = range(start, len(self._order))

        page: list[Post] = []
        next_cursor = None
        for position in candidates:
            post = self._posts[self._order[position]][1]
            if platform is not None and post["platform"] != platform:
                continue
            if author_key is not None and author_key not in _author_keys(post):
                continue
            if since_text is not None and (post["created_at"] or "") < since_text:
                continue
            if len(page) == limit:
                next_cursor = str(position)
                break
            page.append(post)
        return {"posts": page, "next_cursor": next_cursor}

    def _decode_cursor(self, cursor: Any) -> int:
        if cursor is None:
            return 0
        if isinstance(cursor, str) and cursor.isdigit() and int(cursor) <= len(self._order):
            return int(cursor)
        raise InvalidParams("cursor", "is not a cursor returned by content.list")


class HasResources(Protocol):
    """A TaskManager or a TaskContext: anything that carries the server's resources."""

    @property
    def resources(self) -> Mapping[str, Any]: ...


def store_of(source: ContentStore | HasResources) -> ContentStore:
    """The content store itself, or the one in ``source.resources``."""
    if isinstance(source, ContentStore):
        return source
    store = source.resources.get(CONTENT_RESOURCE)
    if not isinstance(store, ContentStore):
        raise InvalidParams(
            "content_ids",
            "this server has no content store "
            f"(put a ContentStore in TaskManager.resources[{CONTENT_RESOURCE!r}])",
        )
    return store


def resolve_posts(source: ContentStore | HasResources, content_ids: Any) -> list[Post]:
    """The stored posts for ``content_ids``, in that order, for analysis by ``content_ids``.

    Raises ContentNotFound listing the unknown ids in ``data.missing`` (the first 1000), and
    InvalidParams naming ``content_ids[i]`` for an id that is not a string.
    """
    return store_of(source).get(content_ids)
