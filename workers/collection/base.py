"""The connector interface and the one normalised post shape every connector produces.

A normalised post is a plain, JSON-serialisable dict (it crosses JSON-RPC and the process pool)::

    {"content_id": "reddit:t1_ivhejr7", "platform": "reddit", "id": "t1_ivhejr7",
     "author": {"id": "t2_2kw1g4lm", "handle": "Jaco-Jimmerson", "name": None},
     "text": "That's the spirit Vote BLUE!!", "created_at": "2022-11-08T00:00:06Z",
     "reply_to": {"post": "reddit:t1_ivh5cf7", "author": None},
     "mentions": [], "hashtags": [], "urls": [],
     "metrics": {"replies": None, "reposts": None, "likes": 1},
     "lang": None, "url": "https://www.reddit.com/r/politics/comments/...", }

``created_at`` is always UTC with a ``Z`` suffix and whole seconds, so that string order is time
order. ``reply_to.post`` is the parent's ``content_id``. Unknown metrics are ``None``, not 0.
``raw`` (the platform's own object) is present only when ``options.include_raw`` is true.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from rpcsvc.errors import InvalidParams

if TYPE_CHECKING:
    from .http import HttpClient

Post = dict[str, Any]

log = logging.getLogger(__name__)

POST_FIELDS = (
    "content_id",
    "platform",
    "id",
    "author",
    "text",
    "created_at",
    "reply_to",
    "mentions",
    "hashtags",
    "urls",
    "metrics",
    "lang",
    "url",
    "raw",
)

# Options every connector understands; each connector adds its own.
COMMON_OPTIONS = frozenset({"include_raw", "page_size"})


@dataclass(frozen=True, kw_only=True)
class CollectionSettings:
    """What connectors need from the server's settings; ``options.base_url`` overrides URLs."""

    import_dir: Path | None = None
    mastodon_url: str = "https://mastodon.social"
    bluesky_url: str = "https://public.api.bsky.app"
    reddit_url: str = "https://www.reddit.com"
    reddit_oauth_url: str = "https://oauth.reddit.com"


@runtime_checkable
class Connector(Protocol):
    """One platform. ``fetch`` is an async generator of pages (lists) of normalised posts.

    It runs on the server's event loop. It stops at ``since`` (posts older than it are never
    yielded and paging ends once the platform's newest-first order passes it), skips posts
    newer than ``until``, yields at most ``limit`` posts, and never requests the same cursor
    twice. Entity problems raise ``EntityNotFound`` / ``PlatformError`` / ``PathNotAllowed``.
    """

    name: str
    options: frozenset[str]
    choices: Mapping[str, tuple[str, ...]]

    def check_entity(self, entity_id: str) -> str | None:
        """The problem with an entity id's syntax, or None; checked before any request."""
        ...

    def fetch(
        self,
        entity_id: str,
        *,
        since: datetime | None,
        until: datetime | None,
        limit: int | None,
        options: Mapping[str, Any],
    ) -> AsyncGenerator[list[Post], None]: ...


# --- time ------------------------------------------------------------------------------------


def format_time(moment: datetime) -> str:
    """The one ``created_at`` format: UTC, whole seconds, ``Z``."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: Any) -> datetime | None:
    """A UTC datetime from an ISO 8601 string or epoch seconds; None if absent or unreadable.

    Naive ISO strings are taken as UTC (platforms mean UTC when they leave the offset out).
    """
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        try:
            return datetime.fromtimestamp(float(value), UTC)
        except (OverflowError, OSError, ValueError):
            return None
    if isinstance(value, str):
        text = value.strip()
        if re.fullmatch(r"\d+(\.\d+)?", text):
            return parse_time(float(text))
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            return None
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return None


def normalise_time(value: Any) -> str | None:
    moment = parse_time(value)
    return format_time(moment) if moment else None


def in_window(created_at: str | None, since: datetime | None, until: datetime | None) -> bool:
    """Whether a post's ``created_at`` lies in [since, until]; undated posts pass no bound."""
    if since is None and until is None:
        return True
    if created_at is None:
        return False
    if since is not None and created_at < format_time(since):
        return False
    return not (until is not None and created_at > format_time(until))


# --- text entities ---------------------------------------------------------------------------

# Platforms without structured entities (Reddit, Pushshift dumps) get them from the text.
_URL_RE = re.compile(r"https?://[^\s<>\"'()\[\]{}]+", re.IGNORECASE)
_HASHTAG_RE = re.compile(r"(?<![\w&/#])#([^\W\d_][\w]*)")
_REDDIT_USER_RE = re.compile(r"(?<![\w/])/?u/([A-Za-z0-9_-]{3,20})\b")
_TRAILING_PUNCT = ".,;:!?*_~"


def urls_in(text: str) -> list[str]:
    return unique(match.rstrip(_TRAILING_PUNCT) for match in _URL_RE.findall(text))


def hashtags_in(text: str) -> list[str]:
    return unique(_HASHTAG_RE.findall(text))


def reddit_mentions_in(text: str) -> list[str]:
    """Reddit's ``u/name`` and ``/u/name`` mentions (not the ``/u/`` inside URLs)."""
    return unique(match.rstrip(".-") for match in _REDDIT_USER_RE.findall(text))


def unique(items: Iterable[str]) -> list[str]:
    """Items without repeats, first occurrence order kept."""
    return list(dict.fromkeys(item for item in items if item))


# --- building posts --------------------------------------------------------------------------


def make_post(
    *,
    platform: str,
    native_id: str,
    author_id: str | None,
    handle: str | None,
    name: str | None,
    text: str,
    created_at: str | None,
    reply_to: Mapping[str, str | None] | None = None,
    mentions: Iterable[str] = (),
    hashtags: Iterable[str] = (),
    urls: Iterable[str] = (),
    replies: int | None = None,
    reposts: int | None = None,
    likes: int | None = None,
    lang: str | None = None,
    url: str | None = None,
    raw: Any = None,
    include_raw: bool = False,
) -> Post:
    """A normalised post with every field present (see the module docstring)."""
    post: Post = {
        "content_id": f"{platform}:{native_id}",
        "platform": platform,
        "id": native_id,
        "author": {"id": author_id, "handle": handle, "name": name},
        "text": text,
        "created_at": created_at,
        "reply_to": dict(reply_to) if reply_to else None,
        "mentions": unique(mentions),
        "hashtags": unique(tag.lstrip("#") for tag in hashtags),
        "urls": unique(urls),
        "metrics": {"replies": replies, "reposts": reposts, "likes": likes},
        "lang": lang,
        "url": url,
    }
    if include_raw:
        post["raw"] = raw
    return post


def as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def as_str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


# --- options ---------------------------------------------------------------------------------


def check_options(
    options: Any,
    allowed: frozenset[str],
    *,
    choices: Mapping[str, tuple[str, ...]] | None = None,
    field: str = "options",
) -> None:
    """InvalidParams naming an unknown or mistyped option.

    Options named ``include_*``/``skip_*`` are booleans; ``choices`` lists allowed values.
    """
    if options is None:
        return
    if not isinstance(options, Mapping):
        raise InvalidParams(field, "must be an object")
    for key, value in options.items():
        if key not in allowed:
            raise InvalidParams(
                f"{field}.{key}", f"unknown option; known options: {', '.join(sorted(allowed))}"
            )
        if key.startswith(("include_", "skip_")) and not isinstance(value, bool):
            raise InvalidParams(f"{field}.{key}", "must be true or false")
        if choices and key in choices and value not in choices[key]:
            raise InvalidParams(f"{field}.{key}", f"must be one of {', '.join(choices[key])}")
        if key == "page_size" and (
            isinstance(value, bool) or not isinstance(value, int) or value < 1
        ):
            raise InvalidParams(f"{field}.{key}", "must be a positive integer")
        if key in ("base_url",) and not (
            isinstance(value, str) and re.match(r"https?://[^/\s]+", value)
        ):
            raise InvalidParams(f"{field}.{key}", "must be an http(s) URL such as https://host")
        if key in ("access_token", "user_agent") and not (isinstance(value, str) and value):
            raise InvalidParams(f"{field}.{key}", "must be a non-empty string")


def page_size(options: Mapping[str, Any], *, maximum: int, limit: int | None) -> int:
    """Posts per request: the platform's maximum, less when fewer are wanted."""
    size = min(int(options.get("page_size", maximum)), maximum)
    return max(1, min(size, limit) if limit is not None else size)


# --- paging ----------------------------------------------------------------------------------


class HttpConnector:
    """What the connectors that talk to a platform over HTTP share: the server's one client."""

    name: str

    def __init__(self, http: HttpClient | None, settings: CollectionSettings) -> None:
        self._http = http
        self.settings = settings

    @property
    def http(self) -> HttpClient:
        if self._http is None:
            raise RuntimeError(f"the {self.name} connector was built without an HttpClient")
        return self._http


@dataclass(frozen=True, slots=True)
class Page:
    """One platform response: its posts, the cursor of the next page, and the oldest sort time.

    ``next_cursor`` is None on the last page (connectors also give None for an empty answer,
    whatever cursor came with it). ``oldest`` is the time the platform orders by (e.g.
    Bluesky's ``indexedAt``), formatted like ``created_at``; paging stops once it passes
    ``since``.
    """

    posts: list[Post]
    next_cursor: str | None
    oldest: str | None


async def paginate(
    fetch_page: Callable[[str | None], Awaitable[Page]],
    *,
    since: datetime | None,
    until: datetime | None,
    limit: int | None,
    what: str,
) -> AsyncGenerator[list[Post], None]:
    """Pages of posts in [since, until], at most ``limit``, for a newest-first platform listing.

    Stops at an empty page, a missing cursor, the limit, once ``since`` is passed, or when the
    platform hands back a cursor it already gave (which would otherwise loop forever).
    """
    since_text = format_time(since) if since else None
    remaining = limit
    seen: set[str] = set()
    cursor: str | None = None
    while remaining is None or remaining > 0:
        page = await fetch_page(cursor)
        kept = [post for post in page.posts if in_window(post["created_at"], since, until)]
        if remaining is not None:
            kept = kept[:remaining]
            remaining -= len(kept)
        if kept:
            yield kept
        if not page.next_cursor:
            return
        if since_text is not None and page.oldest is not None and page.oldest < since_text:
            return
        if page.next_cursor in seen or page.next_cursor == cursor:
            log.warning("%s: platform repeated cursor %r; stopping", what, page.next_cursor)
            return
        seen.add(page.next_cursor)
        cursor = page.next_cursor
