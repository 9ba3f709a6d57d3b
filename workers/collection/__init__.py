"""Platform collection: connectors, the shared HTTP client, and the whole-run driver.

Connectors run on the server's event loop (they wait on the network, not the CPU), never in
the process pool. The server builds one :class:`HttpClient` around its one
``aiohttp.ClientSession`` and asks :func:`get_connector` for a connector per task.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rpcsvc.errors import InvalidParams

from .base import CollectionSettings, Connector, Post, check_options
from .bluesky import BlueskyConnector
from .collect import collect, error_info, parse_window
from .files import FileConnector
from .http import HttpClient, HttpSettings
from .mastodon import MastodonConnector
from .reddit import RedditConnector
from .sample import SampleConnector

ConnectorFactory = Callable[[HttpClient | None, CollectionSettings], Connector]

CONNECTORS: dict[str, ConnectorFactory] = {
    "mastodon": MastodonConnector,
    "bluesky": BlueskyConnector,
    "reddit": RedditConnector,
    "file": FileConnector,
    "sample": SampleConnector,
}
# Connectors that never touch the network and so need no HttpClient.
OFFLINE = frozenset({"file", "sample"})

__all__ = [
    "CONNECTORS",
    "CollectionSettings",
    "Connector",
    "HttpClient",
    "HttpSettings",
    "Post",
    "collect",
    "error_info",
    "get_connector",
    "parse_window",
    "validate_request",
]


def _factory(platform: Any) -> ConnectorFactory:
    """The connector class of ``platform``; InvalidParams naming the known ones otherwise."""
    factory = CONNECTORS.get(platform) if isinstance(platform, str) else None
    if factory is None:
        raise InvalidParams(
            "platform",
            f"unknown platform {platform!r}; known platforms: {', '.join(sorted(CONNECTORS))}",
            known=sorted(CONNECTORS),
        )
    return factory


def get_connector(
    platform: str, *, http: HttpClient | None, settings: CollectionSettings
) -> Connector:
    """The connector for ``platform``; InvalidParams naming the known ones otherwise."""
    factory = _factory(platform)
    if http is None and platform not in OFFLINE:
        raise ValueError(f"the {platform} connector needs an HttpClient")
    return factory(http, settings)


def validate_request(
    platform: Any,
    entity_ids: Any,
    *,
    options: Any = None,
    since: Any = None,
    until: Any = None,
    limit_per_entity: Any = None,
    max_entities: int = 10_000,
) -> None:
    """Check ``collect_platform_data`` params before the task is queued.

    Raises InvalidParams naming the field: ``platform``, ``entity_ids[3]``, ``options.foo``,
    ``since``, ``until`` or ``limit_per_entity``. Needs no network and no settings.
    """
    factory = _factory(platform)
    checker = factory(None, CollectionSettings())  # only checks syntax: no requests
    if not isinstance(entity_ids, list) or not entity_ids:
        raise InvalidParams("entity_ids", "must be a non-empty list of strings")
    if len(entity_ids) > max_entities:
        raise InvalidParams("entity_ids", f"at most {max_entities} entities per task")
    for index, entity_id in enumerate(entity_ids):
        if not isinstance(entity_id, str) or not entity_id:
            raise InvalidParams(f"entity_ids[{index}]", "must be a non-empty string")
        problem = checker.check_entity(entity_id)
        if problem:
            raise InvalidParams(f"entity_ids[{index}]", f"{entity_id!r}: {problem}")
    check_options(options, checker.options, choices=checker.choices)
    if limit_per_entity is not None and (
        isinstance(limit_per_entity, bool)
        or not isinstance(limit_per_entity, int)
        or limit_per_entity < 1
    ):
        raise InvalidParams("limit_per_entity", "must be a positive integer or null")
    parse_window(since, until)
