"""Bluesky: an actor's posts from the public AppView (``app.bsky.feed.getAuthorFeed``).

Entity ids: a handle (``alice.bsky.social``, ``@`` optional) or a DID (``did:plc:...``).
Pages of up to 100 follow ``cursor``. Mentions, links and tags come from the record's richtext
facets, whose ``byteStart``/``byteEnd`` count UTF-8 bytes (not characters); replies from
``record.reply``.

Options: ``base_url`` (default the public AppView), ``access_token`` (bearer), ``filter``
(``posts_with_replies`` by default), ``include_reposts`` (default false: reposts are other
people's posts), ``include_raw``, ``page_size``.

The native id is the post's ``at://`` URI, which is what replies point at.
``reply_to.author`` is the parent's handle when the AppView includes it, else its DID.
"""

from __future__ import annotations

import re
from collections.abc import AsyncGenerator, Mapping
from contextlib import aclosing
from datetime import datetime
from typing import Any

from rpcsvc.errors import EntityNotFound, PlatformError

from .base import (
    COMMON_OPTIONS,
    HttpConnector,
    Page,
    Post,
    as_int,
    as_str,
    make_post,
    normalise_time,
    page_size,
    paginate,
)
from .http import HttpStatusError

MAX_PAGE = 100
FILTERS = ("posts_with_replies", "posts_no_replies", "posts_with_media", "posts_and_author_threads")
_FACET = "app.bsky.richtext.facet#"
# What the AppView answers (HTTP 400) for an actor it does not know.
_UNKNOWN_ACTOR = re.compile(r"not found|could not find|unable to resolve|invalid", re.IGNORECASE)


class BlueskyConnector(HttpConnector):
    name = "bluesky"
    options = COMMON_OPTIONS | {"base_url", "access_token", "filter", "include_reposts"}
    choices: Mapping[str, tuple[str, ...]] = {"filter": FILTERS}

    def check_entity(self, entity_id: str) -> str | None:
        actor = entity_id.lstrip("@")
        if re.fullmatch(r"did:[a-z]+:[A-Za-z0-9._:%-]+", actor) or re.fullmatch(
            r"[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+", actor
        ):
            return None
        return "expected a handle such as alice.bsky.social or a DID such as did:plc:..."

    async def fetch(
        self,
        entity_id: str,
        *,
        since: datetime | None,
        until: datetime | None,
        limit: int | None,
        options: Mapping[str, Any],
    ) -> AsyncGenerator[list[Post], None]:
        base = str(options.get("base_url") or self.settings.bluesky_url).rstrip("/")
        url = f"{base}/xrpc/app.bsky.feed.getAuthorFeed"
        actor = entity_id.lstrip("@")
        headers = {}
        if options.get("access_token"):
            headers["Authorization"] = f"Bearer {options['access_token']}"
        params: dict[str, str | int] = {
            "actor": actor,
            "limit": page_size(options, maximum=MAX_PAGE, limit=limit),
            "filter": str(options.get("filter", "posts_with_replies")),
        }
        include_raw = bool(options.get("include_raw"))
        include_reposts = bool(options.get("include_reposts"))

        async def fetch_page(cursor: str | None) -> Page:
            query = dict(params, cursor=cursor) if cursor else params
            try:
                response = await self.http.get_json(
                    url, params=query, headers=headers, not_found=f"Bluesky actor {actor!r}"
                )
            except HttpStatusError as exc:
                message = exc.body.get("message", "") if isinstance(exc.body, dict) else ""
                if exc.status == 400 and _UNKNOWN_ACTOR.search(str(message)):
                    raise EntityNotFound(
                        f"Bluesky actor {actor!r} not found ({message})",
                        data={"status": 400, "url": url},
                    ) from None
                raise
            data = response.data
            if not isinstance(data, dict) or not isinstance(data.get("feed"), list):
                raise PlatformError(f"{url}: expected an object with a feed list")
            items = [item for item in data["feed"] if isinstance(item, dict)]
            posts = [
                normalise_feed_item(item, include_raw=include_raw)
                for item in items
                if include_reposts or not _is_repost(item)
            ]
            times = [t for item in items if (t := _sort_time(item))]
            cursor_next = as_str(data.get("cursor")) if items else None
            return Page(posts, cursor_next, min(times, default=None))

        pages = paginate(fetch_page, since=since, until=until, limit=limit, what=f"bluesky {actor}")
        async with aclosing(pages):
            async for page in pages:
                yield page


def _is_repost(item: dict[str, Any]) -> bool:
    reason = item.get("reason")
    return isinstance(reason, dict) and "reasonRepost" in str(reason.get("$type", ""))


def _sort_time(item: dict[str, Any]) -> str | None:
    # The author feed is ordered by when the AppView indexed the post (or the repost).
    reason = item.get("reason")
    if isinstance(reason, dict) and reason.get("indexedAt"):
        return normalise_time(reason["indexedAt"])
    post = item.get("post") or {}
    return normalise_time(post.get("indexedAt")) or normalise_time(
        (post.get("record") or {}).get("createdAt")
    )


def _did_of(uri: str) -> str | None:
    match = re.match(r"at://(did:[^/]+)/", uri)
    return match.group(1) if match else None


def read_facets(text: str, facets: Any) -> tuple[list[str], list[str], list[str]]:
    """(mentions, links, tags) of a post's facets; offsets are UTF-8 byte positions."""
    encoded = text.encode("utf-8")
    mentions: list[str] = []
    links: list[str] = []
    tags: list[str] = []
    for facet in facets if isinstance(facets, list) else []:
        if not isinstance(facet, dict):
            continue
        index = facet.get("index") or {}
        start, end = as_int(index.get("byteStart")), as_int(index.get("byteEnd"))
        covered = (
            encoded[start:end].decode("utf-8", "replace")
            if start is not None and end is not None and 0 <= start <= end <= len(encoded)
            else ""
        )
        for feature in facet.get("features") or []:
            if not isinstance(feature, dict):
                continue
            kind = str(feature.get("$type", "")).removeprefix(_FACET)
            if kind == "mention":
                # The facet holds the DID; the text it covers is the handle as written.
                handle = covered[1:] if covered.startswith("@") else None
                mention = handle or as_str(feature.get("did"))
                if mention:
                    mentions.append(mention)
            elif kind == "link" and as_str(feature.get("uri")):
                links.append(feature["uri"])
            elif kind == "tag" and as_str(feature.get("tag")):
                tags.append(feature["tag"])
    return mentions, links, tags


def normalise_feed_item(item: dict[str, Any], *, include_raw: bool) -> Post:
    post = item.get("post") or {}
    record = post.get("record") or {}
    author = post.get("author") or {}
    uri = str(post.get("uri", ""))
    text = str(record.get("text") or "")
    mentions, links, tags = read_facets(text, record.get("facets"))
    tags += [t for t in record.get("tags") or [] if isinstance(t, str)]
    embed = record.get("embed") or {}
    external = embed.get("external") or (embed.get("media") or {}).get("external") or {}
    if as_str(external.get("uri")):
        links.append(external["uri"])

    reply_to = None
    parent_ref = (record.get("reply") or {}).get("parent") or {}
    if as_str(parent_ref.get("uri")):
        parent_uri = parent_ref["uri"]
        parent_view = (item.get("reply") or {}).get("parent") or {}
        parent_author = (
            as_str((parent_view.get("author") or {}).get("handle"))
            if parent_view.get("uri") == parent_uri
            else None
        )
        reply_to = {"post": f"bluesky:{parent_uri}", "author": parent_author or _did_of(parent_uri)}

    handle = as_str(author.get("handle"))
    langs = record.get("langs")
    rkey = uri.rsplit("/", 1)[-1]
    return make_post(
        platform="bluesky",
        native_id=uri,
        author_id=as_str(author.get("did")),
        handle=handle,
        name=as_str(author.get("displayName")),
        text=text,
        created_at=normalise_time(record.get("createdAt")) or normalise_time(post.get("indexedAt")),
        reply_to=reply_to,
        mentions=mentions,
        hashtags=tags,
        urls=links,
        replies=as_int(post.get("replyCount")),
        reposts=as_int(post.get("repostCount")),
        likes=as_int(post.get("likeCount")),
        lang=as_str(langs[0]) if isinstance(langs, list) and langs else None,
        url=f"https://bsky.app/profile/{handle or _did_of(uri)}/post/{rkey}" if uri else None,
        raw=item,
        include_raw=include_raw,
    )
