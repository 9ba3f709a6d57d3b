"""Local stand-ins for Mastodon, Bluesky and Reddit that answer in each platform's documented
format, with scripted faults, for the connector tests.

Each fake is an aiohttp app served on 127.0.0.1. Besides its data it keeps:

- ``requests``: every request seen (path, query, headers, monotonic time), to assert on;
- ``script(path_prefix, *faults)``: the next requests under that path get these faults in
  turn (an error status with headers, extra headers on a normal answer, or a delay);
- ``release``: an event that ends every delayed answer, set when the test is over, so a
  "slow" handler never outlives its test and no test has to sleep;
- ``arrival(path_prefix)``: waits until such a request has come (to cancel mid-request);
- ``max_in_flight``: the most requests it was answering at once.

Formats follow the documentation: Mastodon ``Account``/``Status`` entities with HTML content
and ``Link`` paging by ``max_id``; Bluesky ``app.bsky.feed.getAuthorFeed`` with
``app.bsky.richtext.facet`` byte ranges in UTF-8; Reddit ``Listing`` JSON with ``after``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from multidict import CIMultiDict

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Fault:
    """One scripted answer: ``status`` replaces the real answer; ``headers`` are added to it;
    ``delay`` (seconds, None = until released) holds it back first."""

    status: int | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    body: Any = None
    delay: float | None = 0.0


HANG = Fault(delay=None)


@dataclass(frozen=True)
class Seen:
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]
    at: float


class FakePlatform:
    def __init__(self) -> None:
        self.base_url = ""  # set once served
        self.requests: list[Seen] = []
        self.faults: dict[str, deque[Fault]] = defaultdict(deque)
        self.release = asyncio.Event()
        self._arrivals: dict[str, asyncio.Event] = {}
        self.in_flight = 0
        self.max_in_flight = 0
        self.app = web.Application(middlewares=[self._middleware])

    def script(self, path_prefix: str, *faults: Fault) -> None:
        self.faults[path_prefix].extend(faults)

    def paths(self) -> list[str]:
        return [seen.path for seen in self.requests]

    async def arrival(self, path_prefix: str) -> None:
        """Return once a request under ``path_prefix`` has arrived (no polling, no sleeps)."""
        event = self._arrivals.setdefault(path_prefix, asyncio.Event())
        if any(path.startswith(path_prefix) for path in self.paths()):
            event.set()
        await event.wait()

    def _next_fault(self, path: str) -> Fault | None:
        for prefix, queue in self.faults.items():
            if path.startswith(prefix) and queue:
                return queue.popleft()
        return None

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        self.requests.append(
            Seen(request.path, dict(request.query), dict(request.headers), time.monotonic())
        )
        for prefix, event in self._arrivals.items():
            if request.path.startswith(prefix):
                event.set()
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            fault = self._next_fault(request.path)
            if fault is not None and fault.delay != 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.release.wait(), fault.delay)
            if fault is not None and fault.status is not None:
                body = fault.body if fault.body is not None else {"error": f"HTTP {fault.status}"}
                return web.json_response(body, status=fault.status, headers=fault.headers)
            response = await handler(request)
            if fault is not None:
                response.headers.update(CIMultiDict(fault.headers))
            return response
        finally:
            self.in_flight -= 1


def _limit(request: web.Request, default: int, maximum: int) -> int:
    return min(int(request.query.get("limit", default)), maximum)


# --- Mastodon --------------------------------------------------------------------------------


def mastodon_account(account_id: str, acct: str, display_name: str = "") -> dict[str, Any]:
    return {
        "id": account_id,
        "username": acct.split("@")[0],
        "acct": acct,
        "display_name": display_name or acct.split("@")[0].title(),
        "url": f"https://example.social/@{acct}",
        "created_at": "2022-01-01T00:00:00.000Z",
    }


def mastodon_status(
    status_id: int,
    account: dict[str, Any],
    content: str,
    created_at: str,
    **extra: Any,
) -> dict[str, Any]:
    status = {
        "id": str(status_id),
        "uri": f"https://example.social/users/{account['username']}/statuses/{status_id}",
        "url": f"https://example.social/@{account['username']}/{status_id}",
        "created_at": created_at,
        "account": account,
        "content": content,
        "visibility": "public",
        "sensitive": False,
        "spoiler_text": "",
        "in_reply_to_id": None,
        "in_reply_to_account_id": None,
        "reblog": None,
        "mentions": [],
        "tags": [],
        "replies_count": 0,
        "reblogs_count": 0,
        "favourites_count": 0,
        "language": "en",
    }
    status.update(extra)
    return status


class FakeMastodon(FakePlatform):
    """``/api/v1/accounts/lookup``, ``/api/v1/accounts/:id/statuses``, ``/api/v1/timelines/tag``."""

    def __init__(self) -> None:
        super().__init__()
        self.accounts: dict[str, dict[str, Any]] = {}  # acct -> Account
        self.statuses: dict[str, list[dict[str, Any]]] = {}  # account id -> newest first
        self.tags: dict[str, list[dict[str, Any]]] = {}
        self.app.router.add_get("/api/v1/accounts/lookup", self.lookup)
        self.app.router.add_get("/api/v1/accounts/{id}/statuses", self.account_statuses)
        self.app.router.add_get("/api/v1/timelines/tag/{tag}", self.tag_timeline)

    def add_account(self, account: dict[str, Any], statuses: list[dict[str, Any]]) -> None:
        self.accounts[account["acct"]] = account
        self.statuses[account["id"]] = sorted(statuses, key=lambda s: -int(s["id"]))

    async def lookup(self, request: web.Request) -> web.Response:
        account = self.accounts.get(request.query.get("acct", ""))
        if account is None:
            return web.json_response({"error": "Record not found"}, status=404)
        return web.json_response(account)

    async def account_statuses(self, request: web.Request) -> web.Response:
        if request.match_info["id"] not in self.statuses:
            return web.json_response({"error": "Record not found"}, status=404)
        statuses = self.statuses[request.match_info["id"]]
        if request.query.get("exclude_reblogs") == "true":
            statuses = [s for s in statuses if not s["reblog"]]
        return self._page(request, statuses)

    async def tag_timeline(self, request: web.Request) -> web.Response:
        return self._page(request, self.tags.get(request.match_info["tag"].lower(), []))

    def _page(self, request: web.Request, statuses: list[dict[str, Any]]) -> web.Response:
        if "max_id" in request.query:
            statuses = [s for s in statuses if int(s["id"]) < int(request.query["max_id"])]
        limit = _limit(request, 20, 40)
        page = statuses[:limit]
        headers = {}
        if page:
            url = request.url.with_query({"limit": str(limit)})
            headers["Link"] = (
                f'<{url.update_query(max_id=page[-1]["id"])}>; rel="next", '
                f'<{url.update_query(min_id=page[0]["id"])}>; rel="prev"'
            )
        return web.json_response(page, headers=headers)


# --- Bluesky ---------------------------------------------------------------------------------


def bluesky_item(
    did: str,
    handle: str,
    rkey: str,
    text: str,
    created_at: str,
    *,
    mentions: Mapping[str, str] = {},
    links: Mapping[str, str] = {},
    tags: tuple[str, ...] = (),
    reply_parent: str | None = None,
    likes: int = 0,
) -> dict[str, Any]:
    """A feed item whose facets point at byte ranges of ``text`` in UTF-8, as the lexicon says.

    ``mentions`` maps the written ``@handle`` to its DID; ``links`` maps written text to a URI.
    """
    encoded = text.encode("utf-8")

    def facet(written: str, feature: dict[str, Any]) -> dict[str, Any]:
        start = encoded.index(written.encode("utf-8"))
        return {
            "index": {"byteStart": start, "byteEnd": start + len(written.encode("utf-8"))},
            "features": [feature],
        }

    facets = [
        facet(w, {"$type": "app.bsky.richtext.facet#mention", "did": d})
        for w, d in mentions.items()
    ]
    facets += [
        facet(w, {"$type": "app.bsky.richtext.facet#link", "uri": u}) for w, u in links.items()
    ]
    facets += [facet(f"#{t}", {"$type": "app.bsky.richtext.facet#tag", "tag": t}) for t in tags]
    record: dict[str, Any] = {
        "$type": "app.bsky.feed.post",
        "text": text,
        "createdAt": created_at,
        "langs": ["en"],
        "facets": facets,
    }
    if reply_parent:
        ref = {"uri": reply_parent, "cid": "bafyreiparent"}
        record["reply"] = {"root": ref, "parent": ref}
    return {
        "post": {
            "uri": f"at://{did}/app.bsky.feed.post/{rkey}",
            "cid": f"bafyrei{rkey}",
            "author": {"did": did, "handle": handle, "displayName": handle.split(".")[0].title()},
            "record": record,
            "replyCount": 0,
            "repostCount": 0,
            "likeCount": likes,
            "quoteCount": 0,
            "indexedAt": created_at,
        }
    }


class FakeBluesky(FakePlatform):
    """``/xrpc/app.bsky.feed.getAuthorFeed`` with ``cursor`` paging."""

    def __init__(self) -> None:
        super().__init__()
        self.feeds: dict[str, list[dict[str, Any]]] = {}  # handle or DID -> newest first
        self.stuck_cursor = False  # answer every page with the same cursor (a platform bug)
        self.app.router.add_get("/xrpc/app.bsky.feed.getAuthorFeed", self.author_feed)

    def add_actor(self, did: str, handle: str, items: list[dict[str, Any]]) -> None:
        self.feeds[did] = self.feeds[handle] = items

    async def author_feed(self, request: web.Request) -> web.Response:
        actor = request.query.get("actor", "")
        if actor not in self.feeds:
            return web.json_response(
                {"error": "InvalidRequest", "message": "Profile not found"}, status=400
            )
        offset = 0 if self.stuck_cursor else int(request.query.get("cursor", "0") or 0)
        limit = _limit(request, 50, 100)
        page = self.feeds[actor][offset : offset + limit]
        body: dict[str, Any] = {"feed": page}
        if page:
            body["cursor"] = str(limit if self.stuck_cursor else offset + limit)
        return web.json_response(body)


# --- Reddit ----------------------------------------------------------------------------------


def reddit_comment(
    comment_id: str, author: str, body: str, created_utc: int, *, subreddit: str, parent: str
) -> dict[str, Any]:
    return {
        "kind": "t1",
        "data": {
            "id": comment_id,
            "name": f"t1_{comment_id}",
            "author": author,
            "author_fullname": f"t2_{author.lower()}",
            "body": body,
            "created_utc": float(created_utc),
            "parent_id": parent,
            "link_id": parent if parent.startswith("t3_") else "t3_thread",
            "subreddit": subreddit,
            "score": 3,
            "permalink": f"/r/{subreddit}/comments/thread/x/{comment_id}/",
        },
    }


class FakeReddit(FakePlatform):
    """``/r/{sub}/new.json`` and ``/user/{name}/comments.json`` Listings with ``after``."""

    def __init__(self) -> None:
        super().__init__()
        self.listings: dict[str, list[dict[str, Any]]] = {}  # path -> children, newest first
        self.app.router.add_get("/r/{sub}/new.json", self.listing)
        self.app.router.add_get("/user/{name}/{kind}.json", self.listing)

    async def listing(self, request: web.Request) -> web.Response:
        children = self.listings.get(request.path)
        if children is None:
            return web.json_response({"message": "Not Found", "error": 404}, status=404)
        start = 0
        if "after" in request.query:
            names = [c["data"]["name"] for c in children]
            start = names.index(request.query["after"]) + 1
        limit = _limit(request, 25, 100)
        page = children[start : start + limit]
        more = start + limit < len(children)
        return web.json_response(
            {
                "kind": "Listing",
                "data": {
                    "after": page[-1]["data"]["name"] if page and more else None,
                    "before": None,
                    "dist": len(page),
                    "children": page,
                },
            },
            headers={
                "X-Ratelimit-Used": "1",
                "X-Ratelimit-Remaining": "99",
                "X-Ratelimit-Reset": "300",
            },
        )
