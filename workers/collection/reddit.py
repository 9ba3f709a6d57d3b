"""Reddit: listing JSON of a subreddit's new posts or a user's comments or submissions.

Entity ids: ``r/<subreddit>`` (``/r/<sub>/new.json``), ``u/<user>`` (``/user/<user>/comments.json``)
and ``u/<user>/submitted`` (``/user/<user>/submitted.json``). Pages of up to 100 follow
``data.after``. Every request carries a descriptive User-Agent, as Reddit's API rules ask.

Options: ``base_url``, ``access_token`` (OAuth bearer; the default base URL then becomes
``https://oauth.reddit.com``), ``user_agent``, ``include_raw``, ``page_size``.

The native id is Reddit's fullname (``t1_`` comment, ``t3_`` submission), so a comment's
``parent_id`` is already its parent's id. The Pushshift-shaped dumps read by the ``file``
connector go through the same :func:`normalise_thing`.
"""

from __future__ import annotations

import html
import re
from collections.abc import AsyncGenerator, Mapping
from contextlib import aclosing
from datetime import datetime
from typing import Any
from urllib.parse import quote

from rpcsvc.errors import EntityNotFound, PlatformError

from .base import (
    COMMON_OPTIONS,
    HttpConnector,
    Page,
    Post,
    as_int,
    as_str,
    hashtags_in,
    make_post,
    normalise_time,
    page_size,
    paginate,
    reddit_mentions_in,
    urls_in,
)

MAX_PAGE = 100
_ENTITY = re.compile(
    r"/?r/(?P<sub>\w{2,21})/?"
    r"|/?(?:u|user)/(?P<user>[\w-]{3,20})(?P<kind>/submitted|/comments)?/?"
)
_GONE = ("[deleted]", "[removed]")


class RedditConnector(HttpConnector):
    name = "reddit"
    options = COMMON_OPTIONS | {"base_url", "access_token", "user_agent"}
    choices: Mapping[str, tuple[str, ...]] = {}

    def check_entity(self, entity_id: str) -> str | None:
        if _ENTITY.fullmatch(entity_id):
            return None
        return "expected r/<subreddit>, u/<user> or u/<user>/submitted"

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
            raise EntityNotFound(f"not a Reddit entity: {entity_id!r}")
        token = options.get("access_token")
        default_base = self.settings.reddit_oauth_url if token else self.settings.reddit_url
        base = str(options.get("base_url") or default_base).rstrip("/")
        if match["sub"]:
            url, what = f"{base}/r/{quote(match['sub'])}/new.json", f"subreddit r/{match['sub']}"
        else:
            listing = "submitted" if match["kind"] == "/submitted" else "comments"
            url, what = (
                f"{base}/user/{quote(match['user'])}/{listing}.json",
                f"user u/{match['user']}",
            )
        headers = {}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if options.get("user_agent"):
            headers["User-Agent"] = str(options["user_agent"])
        # raw_json=1: bodies come unescaped (no &amp;), as users wrote them.
        params: dict[str, str | int] = {
            "limit": page_size(options, maximum=MAX_PAGE, limit=limit),
            "raw_json": 1,
        }
        include_raw = bool(options.get("include_raw"))

        async def fetch_page(after: str | None) -> Page:
            query = dict(params, after=after) if after else params
            response = await self.http.get_json(url, params=query, headers=headers, not_found=what)
            data = response.data.get("data") if isinstance(response.data, dict) else None
            if not isinstance(data, dict) or not isinstance(data.get("children"), list):
                raise PlatformError(f"{url}: expected a Listing")
            children = [c for c in data["children"] if isinstance(c, dict)]
            # An unknown subreddit redirects to a subreddit search (children of kind t5).
            if "/subreddits/search" in response.url or any(c.get("kind") == "t5" for c in children):
                raise EntityNotFound(f"{what} not found", data={"url": url})
            things = [c["data"] for c in children if isinstance(c.get("data"), dict)]
            posts = [normalise_thing(t, include_raw=include_raw) for t in things]
            times = [p["created_at"] for p in posts if p["created_at"]]
            after_next = as_str(data.get("after")) if things else None
            return Page(posts, after_next, min(times, default=None))

        pages = paginate(fetch_page, since=since, until=until, limit=limit, what=what)
        async with aclosing(pages):
            async for page in pages:
                yield page


def normalise_thing(data: Mapping[str, Any], *, include_raw: bool, unescape: bool = False) -> Post:
    """A comment (``body``) or submission (``title``) from the API or a Pushshift dump.

    ``unescape``: the API without ``raw_json=1`` and Pushshift keep Reddit's ``&amp;``,
    ``&lt;``, ``&gt;`` escapes in text and URLs.
    """
    is_comment = "body" in data or str(data.get("name", "")).startswith("t1_")
    kind = "t1" if is_comment else "t3"
    fix = html.unescape if unescape else (lambda text: text)
    native = as_str(data.get("name")) or f"{kind}_{data.get('id')}"
    if is_comment:
        text = fix(str(data.get("body") or ""))
    else:
        text = fix(str(data.get("title") or ""))
        selftext = fix(str(data.get("selftext") or ""))
        if selftext and selftext not in _GONE:
            text = f"{text}\n\n{selftext}"
    author = as_str(data.get("author"))
    deleted = author in _GONE
    parent = as_str(data.get("parent_id")) if is_comment else None
    urls = urls_in(text)
    link = as_str(data.get("url"))
    if not is_comment and link and not data.get("is_self"):
        urls.insert(0, fix(link))
    permalink = as_str(data.get("permalink"))
    return make_post(
        platform="reddit",
        native_id=native,
        author_id=None if deleted else as_str(data.get("author_fullname")),
        handle=None if deleted else author,
        name=None,
        text=text,
        created_at=normalise_time(data.get("created_utc")),
        reply_to={"post": f"reddit:{parent}", "author": None} if parent else None,
        mentions=reddit_mentions_in(text),
        hashtags=hashtags_in(text),
        urls=urls,
        replies=None if is_comment else as_int(data.get("num_comments")),
        reposts=None if is_comment else as_int(data.get("num_crossposts")),
        likes=as_int(data.get("score")),
        lang=None,
        url=f"https://www.reddit.com{permalink}" if permalink else None,
        raw=dict(data),
        include_raw=include_raw,
    )
