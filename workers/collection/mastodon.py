"""Mastodon: an account's statuses or a hashtag timeline, on any instance.

Entity ids: ``#tag`` is the hashtag timeline (``GET /api/v1/timelines/tag/:tag``); anything
else is an account (``user``, ``@user`` or ``user@other.instance``), resolved with
``GET /api/v1/accounts/lookup?acct=`` and read from ``GET /api/v1/accounts/:id/statuses``.
Pages of up to 40 follow the ``Link: <...max_id=...>; rel="next"`` header.

Options: ``base_url`` (the instance), ``access_token`` (sent as a bearer token),
``include_reblogs`` (default false: boosts are other people's posts), ``include_raw``,
``page_size``.

Status ids are local to an instance, so the native id is ``host/status_id``
(``mastodon:mastodon.social/1093...``); local handles get ``@host`` appended.
"""

from __future__ import annotations

import re
from collections.abc import AsyncGenerator, Mapping
from contextlib import aclosing
from datetime import datetime
from html.parser import HTMLParser
from typing import Any
from urllib.parse import quote

from yarl import URL

from rpcsvc.errors import PlatformError

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

MAX_PAGE = 40

_BLOCK_TAGS = frozenset({"p", "div", "blockquote", "pre", "ul", "ol", "h1", "h2", "h3", "h4"})


class _HtmlText(HTMLParser):
    """Plain text and outbound links of a status's HTML ``content``.

    Paragraphs become blank-line separated, ``<br>`` a line break; link text is kept whole,
    including the parts Mastodon hides with ``class="invisible"`` (so URLs stay complete).
    """

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("br", "li"):
            self.parts.append("\n")
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n\n")
        elif tag == "a":
            attributes = dict(attrs)
            classes = (attributes.get("class") or "").split()
            rel = (attributes.get("rel") or "").split()
            href = attributes.get("href")
            if href and "mention" not in classes and "hashtag" not in classes and "tag" not in rel:
                self.links.append(href)

    def handle_endtag(self, tag: str) -> None:
        if tag in _BLOCK_TAGS:
            self.parts.append("\n\n")

    def handle_data(self, data: str) -> None:
        self.parts.append(data)

    def text(self) -> str:
        joined = "".join(self.parts)
        joined = re.sub(r"[ \t]+\n", "\n", joined)
        return re.sub(r"\n{3,}", "\n\n", joined).strip()


def html_to_text(html: str) -> tuple[str, list[str]]:
    """(plain text, outbound link URLs) of Mastodon status HTML."""
    parser = _HtmlText()
    parser.feed(html)
    parser.close()
    return parser.text(), parser.links


class MastodonConnector(HttpConnector):
    name = "mastodon"
    options = COMMON_OPTIONS | {"base_url", "access_token", "include_reblogs"}
    choices: Mapping[str, tuple[str, ...]] = {}

    def check_entity(self, entity_id: str) -> str | None:
        if entity_id.startswith("#"):
            ok = re.fullmatch(r"#\w+", entity_id)
            return None if ok else "a hashtag is # followed by letters, digits or _"
        ok = re.fullmatch(r"@?[\w.-]+(@[\w.-]+)?", entity_id)
        return None if ok else "expected an account (user or user@instance) or #hashtag"

    async def fetch(
        self,
        entity_id: str,
        *,
        since: datetime | None,
        until: datetime | None,
        limit: int | None,
        options: Mapping[str, Any],
    ) -> AsyncGenerator[list[Post], None]:
        base = str(options.get("base_url") or self.settings.mastodon_url).rstrip("/")
        host = URL(base).host or base
        headers = {}
        if options.get("access_token"):
            headers["Authorization"] = f"Bearer {options['access_token']}"
        size = page_size(options, maximum=MAX_PAGE, limit=limit)
        include_raw = bool(options.get("include_raw"))
        params: dict[str, str | int] = {"limit": size}

        if entity_id.startswith("#"):
            url = f"{base}/api/v1/timelines/tag/{quote(entity_id[1:], safe='')}"
        else:
            acct = entity_id.lstrip("@")
            lookup = await self.http.get_json(
                f"{base}/api/v1/accounts/lookup",
                params={"acct": acct},
                headers=headers,
                not_found=f"Mastodon account {acct!r} on {host}",
            )
            account_id = as_str(lookup.data.get("id")) if isinstance(lookup.data, dict) else None
            if account_id is None:
                raise PlatformError(f"{host}: account lookup for {acct!r} gave no id")
            url = f"{base}/api/v1/accounts/{quote(account_id, safe='')}/statuses"
            if not options.get("include_reblogs"):
                params["exclude_reblogs"] = "true"

        async def fetch_page(max_id: str | None) -> Page:
            query = dict(params, max_id=max_id) if max_id else params
            response = await self.http.get_json(url, params=query, headers=headers)
            if not isinstance(response.data, list):
                raise PlatformError(f"{url}: expected a list of statuses")
            statuses = [s for s in response.data if isinstance(s, dict)]
            posts = [
                normalise_status(status, host=host, include_raw=include_raw)
                for status in statuses
                if options.get("include_reblogs") or not status.get("reblog")
            ]
            times = [t for s in statuses if (t := normalise_time(s.get("created_at")))]
            return Page(posts, _next_max_id(response.links, statuses), min(times, default=None))

        pages = paginate(
            fetch_page, since=since, until=until, limit=limit, what=f"mastodon {entity_id}"
        )
        async with aclosing(pages):
            async for page in pages:
                yield page


def _next_max_id(links: Mapping[str, str], statuses: list[dict[str, Any]]) -> str | None:
    """The next page's ``max_id`` from the Link header; the last id if the header is missing."""
    if not statuses:
        return None
    if "next" in links:
        return URL(links["next"]).query.get("max_id")
    if links:  # a Link header without rel="next": the last page
        return None
    return as_str(statuses[-1].get("id"))


def _full_acct(acct: str | None, host: str) -> str | None:
    if not acct:
        return None
    return acct if "@" in acct else f"{acct}@{host}"


def normalise_status(status: dict[str, Any], *, host: str, include_raw: bool) -> Post:
    raw = status
    if isinstance(status.get("reblog"), dict):
        status = status["reblog"]  # a boost: the post is the boosted status
    account = status.get("account") or {}
    text, links = html_to_text(str(status.get("content") or ""))
    if status.get("spoiler_text"):
        text = f"{status['spoiler_text']}\n\n{text}".strip()
    mentions = {
        str(m.get("id")): _full_acct(as_str(m.get("acct")), host)
        for m in status.get("mentions") or []
        if isinstance(m, dict)
    }
    reply_to = None
    if status.get("in_reply_to_id"):
        parent_account = str(status.get("in_reply_to_account_id"))
        parent_author = (
            _full_acct(as_str(account.get("acct")), host)
            if parent_account == str(account.get("id"))
            else mentions.get(parent_account)
        )
        reply_to = {"post": f"mastodon:{host}/{status['in_reply_to_id']}", "author": parent_author}
    return make_post(
        platform="mastodon",
        native_id=f"{host}/{status.get('id')}",
        author_id=as_str(account.get("id")),
        handle=_full_acct(as_str(account.get("acct")), host),
        name=as_str(account.get("display_name")),
        text=text,
        created_at=normalise_time(status.get("created_at")),
        reply_to=reply_to,
        mentions=[m for m in mentions.values() if m],
        hashtags=[str(t.get("name")) for t in status.get("tags") or [] if isinstance(t, dict)],
        urls=links,
        replies=as_int(status.get("replies_count")),
        reposts=as_int(status.get("reblogs_count")),
        likes=as_int(status.get("favourites_count")),
        lang=as_str(status.get("language")),
        url=as_str(status.get("url")) or as_str(status.get("uri")),
        raw=raw,
        include_raw=include_raw,
    )
