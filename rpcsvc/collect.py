"""Collection in the service: the ``collect_platform_data`` task type and what it runs on.

The task is ``io``: it waits on platforms, so it runs as an asyncio task on the server's loop,
never in the process pool. Every collection of a server shares one ``aiohttp.ClientSession``
(wrapped in the polite :class:`HttpClient`) and one :class:`ContentStore`; both live in
``TaskManager.resources`` (``"http"``, ``"content"``) and on the app (``HTTP_KEY``,
``CONTENT_KEY``). :func:`setup_collection` creates them with the app and closes the session
only after the manager has drained, so tasks finishing in the shutdown grace still have it.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from typing import Any

import aiohttp
from aiohttp import web

from workers.collection import (
    CONNECTORS,
    CollectionSettings,
    HttpClient,
    HttpSettings,
    collect,
    get_connector,
    validate_request,
)

from .config import Settings
from .content import CONTENT_RESOURCE, ContentStore, store_of
from .errors import InvalidParams
from .manager import TaskContext, TaskManager
from .registry import TaskRegistry, TaskType

HTTP_RESOURCE = "http"
CONTENT_KEY = web.AppKey("content", ContentStore)
HTTP_KEY = web.AppKey("http", HttpClient)
MAX_ENTITIES = 10_000


def _options_help() -> str:
    per_platform = "; ".join(
        f"{name}: {', '.join(sorted(factory(None, CollectionSettings()).options))}"
        for name, factory in sorted(CONNECTORS.items())
    )
    return f"Platform options ({per_platform})"


COLLECT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["platform", "entity_ids"],
    "additionalProperties": False,
    "properties": {
        "platform": {"enum": sorted(CONNECTORS)},
        "entity_ids": {
            "type": "array",
            "items": {"type": "string", "minLength": 1},
            "minItems": 1,
            "maxItems": MAX_ENTITIES,
            "description": "Accounts, tags, subreddits or paths, as the platform names them "
            "(sample: all, r/<sub>, u/<user>; mastodon: user, @user@host, #tag; "
            "bluesky: handle or did; reddit: r/<sub>, u/<user>; file: a path in import_dir)",
        },
        # No "format": date-time: plain dates and offset-less times are accepted (as UTC).
        "since": {
            "type": ["string", "null"],
            "description": "ISO 8601; older posts are left out and paging stops there",
        },
        "until": {"type": ["string", "null"], "description": "ISO 8601; newer posts are left out"},
        "limit_per_entity": {"type": ["integer", "null"], "minimum": 1},
        "options": {"type": "object", "description": _options_help()},
    },
}


def _check_collection(params: dict[str, Any], context: TaskContext) -> dict[str, Any]:
    """Everything a collection can be refused for before it is queued, named ``params.<x>``."""
    try:
        validate_request(
            params["platform"],
            params["entity_ids"],
            options=params.get("options"),
            since=params.get("since"),
            until=params.get("until"),
            limit_per_entity=params.get("limit_per_entity"),
            max_entities=MAX_ENTITIES,
        )
    except InvalidParams as exc:
        details = {k: v for k, v in (exc.data or {}).items() if k not in ("field", "problem")}
        raise InvalidParams(f"params.{exc.field}", exc.problem, **details) from None
    return params


def collection_settings(settings: Settings) -> CollectionSettings:
    return CollectionSettings(
        import_dir=settings.import_dir,
        mastodon_url=settings.mastodon_url,
        bluesky_url=settings.bluesky_url,
        reddit_url=settings.reddit_url,
    )


def http_settings(settings: Settings) -> HttpSettings:
    http = HttpSettings(
        per_host_limit=settings.http_per_host_limit,
        request_timeout=settings.http_timeout,
        max_attempts=settings.http_max_attempts,
        backoff_base=settings.http_backoff_base,
        max_rate_limit_wait=settings.max_rate_limit_wait,
    )
    return replace(http, user_agent=settings.user_agent) if settings.user_agent else http


@contextlib.asynccontextmanager
async def open_http_client(settings: Settings) -> AsyncIterator[HttpClient]:
    """One ClientSession and its HttpClient, closed on exit."""
    async with aiohttp.ClientSession() as session:
        yield HttpClient(session, http_settings(settings))


async def run_collection(params: dict[str, Any], context: TaskContext) -> dict[str, Any]:
    """Collect into the server's content store; ``progress`` counts finished entities."""
    store = store_of(context)
    entity_ids = list(dict.fromkeys(params["entity_ids"]))  # collect() drops repeats too
    done = 0
    context.set_progress(done, len(entity_ids))

    def entity_done(entity_id: str, result: dict[str, Any]) -> None:
        nonlocal done
        done += 1
        context.set_progress(done, len(entity_ids))

    async def run(http: HttpClient | None) -> dict[str, Any]:
        connector = get_connector(
            params["platform"], http=http, settings=collection_settings(context.settings)
        )
        return await collect(
            connector,
            entity_ids,
            store=store,
            since=params.get("since"),
            until=params.get("until"),
            limit_per_entity=params.get("limit_per_entity"),
            options=params.get("options"),
            on_entity_done=entity_done,
            concurrency=context.settings.collect_concurrency,
        )

    shared = context.resources.get(HTTP_RESOURCE)
    if shared is not None:
        return await run(shared)
    # A TaskManager used without the app has no shared session: one for this task only.
    async with open_http_client(context.settings) as own:
        return await run(own)


def register_collection_types(registry: TaskRegistry) -> None:
    registry.register(
        TaskType(
            name="collect_platform_data",
            kind="io",
            description="Collect posts of accounts, tags, subreddits or files from a platform "
            "into the content store. The result counts posts per entity and lists their "
            "content_ids; one failing entity does not fail the others.",
            params_schema=COLLECT_SCHEMA,
            check=_check_collection,
            run=run_collection,
            examples=[
                {"platform": "sample", "entity_ids": ["r/politics"], "limit_per_entity": 200},
                {
                    "platform": "mastodon",
                    "entity_ids": ["Gargron", "#election"],
                    "since": "2024-11-05T00:00:00Z",
                    "options": {"base_url": "https://mastodon.social"},
                },
            ],
        )
    )


def setup_collection(app: web.Application, manager: TaskManager) -> ContentStore:
    """Give ``manager`` (and ``app``) the content store and, while the app runs, the shared
    HTTP client."""
    store = ContentStore(max_posts=manager.settings.max_content)
    manager.resources[CONTENT_RESOURCE] = store
    app[CONTENT_KEY] = store
    app.cleanup_ctx.append(_http_client_ctx(manager))
    return store


def _http_client_ctx(
    manager: TaskManager,
) -> Callable[[web.Application], AsyncIterator[None]]:
    async def http_client(app: web.Application) -> AsyncIterator[None]:
        async with open_http_client(manager.settings) as client:
            manager.resources[HTTP_RESOURCE] = client
            app[HTTP_KEY] = client
            yield
            # Collections may still run in the shutdown grace: close the session after them,
            # whatever order the app's other cleanups run in (shutdown() is idempotent).
            await manager.shutdown()
            del manager.resources[HTTP_RESOURCE]

    return http_client
