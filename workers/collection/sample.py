"""The ``sample`` platform: a small demo corpus shipped in the package; no network, no keys.

``workers/data/sample_posts.jsonl.gz`` holds a few thousand real Reddit comments and
submissions on the 2022 US midterm elections (MEIU22, MIT licence; see
``workers/data/SAMPLE_ATTRIBUTION.md``), already normalised (``platform: "reddit"``).

Entity ids: ``all`` (every post), ``r/<subreddit>`` (case-insensitive) or ``u/<author>``.
Posts come newest first, so ``limit`` keeps the newest. Options: ``page_size``
(``include_raw`` is accepted; the corpus keeps no raw objects).
"""

from __future__ import annotations

import asyncio
import gzip
import re
from collections import Counter
from collections.abc import AsyncGenerator, Mapping
from datetime import datetime
from functools import cache
from importlib import resources
from typing import Any

import orjson

from rpcsvc.errors import EntityNotFound

from .base import COMMON_OPTIONS, CollectionSettings, Post, in_window, page_size
from .http import HttpClient

CORPUS = ("data", "sample_posts.jsonl.gz")
DEFAULT_PAGE = 500
_ENTITY = re.compile(r"all|r/(?P<sub>\w+)|u/(?P<user>[\w-]+)")
_SUBREDDIT = re.compile(r"^https://www\.reddit\.com/r/([^/]+)/")


@cache
def load_corpus() -> tuple[Post, ...]:
    """Every sample post, newest first (read once per process)."""
    path = resources.files("workers").joinpath(*CORPUS)
    with path.open("rb") as raw, gzip.open(raw, "rb") as lines:
        posts = [orjson.loads(line) for line in lines if line.strip()]
    posts.sort(key=lambda p: p["created_at"] or "", reverse=True)
    return tuple(posts)


def subreddit_of(post: Post) -> str | None:
    match = _SUBREDDIT.match(post.get("url") or "")
    return match.group(1) if match else None


def describe_corpus() -> dict[str, Any]:
    """Counts for documentation: posts, authors, subreddits (most common first)."""
    posts = load_corpus()
    return {
        "posts": len(posts),
        "authors": len({p["author"]["handle"] for p in posts}),
        "subreddits": dict(Counter(subreddit_of(p) for p in posts).most_common()),
    }


class SampleConnector:
    name = "sample"
    options = COMMON_OPTIONS
    choices: Mapping[str, tuple[str, ...]] = {}

    def __init__(self, http: HttpClient | None, settings: CollectionSettings) -> None:
        self.settings = settings

    def check_entity(self, entity_id: str) -> str | None:
        return None if _ENTITY.fullmatch(entity_id) else "expected all, r/<subreddit> or u/<author>"

    async def fetch(
        self,
        entity_id: str,
        *,
        since: datetime | None,
        until: datetime | None,
        limit: int | None,
        options: Mapping[str, Any],
    ) -> AsyncGenerator[list[Post], None]:
        match = _ENTITY.fullmatch(entity_id)
        if match is None:
            raise EntityNotFound(
                f"sample has no entity {entity_id!r}; use all, r/<sub> or u/<author>"
            )
        corpus = await asyncio.to_thread(load_corpus)
        if match["sub"]:
            wanted = match["sub"].lower()
            posts = [p for p in corpus if (subreddit_of(p) or "").lower() == wanted]
        elif match["user"]:
            wanted = match["user"].lower()
            posts = [p for p in corpus if (p["author"]["handle"] or "").lower() == wanted]
        else:
            posts = list(corpus)
        if not posts:
            raise EntityNotFound(f"the sample corpus has no posts for {entity_id!r}")
        posts = [p for p in posts if in_window(p["created_at"], since, until)]
        if limit is not None:
            posts = posts[:limit]
        size = page_size(options, maximum=DEFAULT_PAGE, limit=None)
        for start in range(0, len(posts), size):
            yield posts[start : start + size]  # shared with the cache: the store copies
