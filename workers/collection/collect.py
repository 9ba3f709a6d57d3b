"""Collecting a list of entities with one connector: what ``collect_platform_data`` runs.

Entities are collected concurrently (``concurrency`` at a time; the HTTP client's per-host
limit still applies underneath) and each page is stored as it arrives, so a failure part way
keeps what was already stored and says so. One failing entity never fails the others; only a
run where every entity failed raises :class:`CollectionError`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from contextlib import aclosing
from datetime import datetime
from typing import Any, Protocol

from rpcsvc import errors
from rpcsvc.errors import CollectionError, InvalidParams

from .base import Connector, parse_time

log = logging.getLogger(__name__)


class PostSink(Protocol):
    """Where pages go: :class:`rpcsvc.content.ContentStore` or anything with its ``add``."""

    def add(self, posts: Any) -> dict[str, Any]: ...


def parse_window(since: Any, until: Any) -> tuple[datetime | None, datetime | None]:
    """``since``/``until`` (datetime, ISO 8601 string or null) as UTC datetimes, checked."""
    bounds: list[datetime | None] = []
    for name, value in (("since", since), ("until", until)):
        if value is None:
            bounds.append(None)
            continue
        moment = value if isinstance(value, datetime) else None
        if isinstance(value, str):
            moment = parse_time(value)
        if moment is None:
            raise InvalidParams(name, "must be an ISO 8601 time such as 2022-11-08T00:00:00Z")
        bounds.append(parse_time(moment.isoformat()))  # naive -> UTC, aware -> UTC
    if bounds[0] is not None and bounds[1] is not None and bounds[0] > bounds[1]:
        raise InvalidParams("until", "must not be before since")
    return bounds[0], bounds[1]


def error_info(exc: BaseException) -> dict[str, Any]:
    """``{type, message, data?}`` with the nearest public rpcsvc error class as ``type``."""
    public = next(
        (cls.__name__ for cls in type(exc).__mro__ if getattr(errors, cls.__name__, None) is cls),
        "InternalError",
    )
    info: dict[str, Any] = {"type": public, "message": str(exc) or type(exc).__name__}
    if getattr(exc, "data", None) is not None:
        info["data"] = exc.data  # type: ignore[attr-defined]
    return info


async def collect(
    connector: Connector,
    entity_ids: Sequence[str],
    *,
    store: PostSink,
    since: datetime | str | None = None,
    until: datetime | str | None = None,
    limit_per_entity: int | None = None,
    options: Mapping[str, Any] | None = None,
    on_entity_done: Callable[[str, dict[str, Any]], object] | None = None,
    concurrency: int = 8,
) -> dict[str, Any]:
    """Collect every entity into ``store``; the result::

        {"platform": "mastodon",
         "entities": {entity_id: {"collected": int, "stored": int, "added": int,
                                  "updated": int, "content_ids": [...], "error": None | {...}}},
         "total_collected": int, "total_stored": int, "content_ids": [... unique ...],
         "failed": [entity_id, ...], "errors": [{"entity_id", "type", "message", "data"?}]}

    ``on_entity_done(entity_id, entity_result)`` is called as each entity finishes (for task
    progress). Repeated entity ids are collected once. When every entity fails it raises
    CollectionError (their common subclass, e.g. EntityNotFound, when they share one) with
    ``data.errors``.
    """
    since_at, until_at = parse_window(since, until)
    options = options or {}
    wanted = list(dict.fromkeys(entity_ids))
    results: dict[str, dict[str, Any]] = {}
    queue = iter(wanted)

    async def collect_one(entity_id: str) -> dict[str, Any]:
        result: dict[str, Any] = {
            "collected": 0, "stored": 0, "added": 0, "updated": 0, "content_ids": [],
            "error": None,
        }  # fmt: skip
        try:
            pages = connector.fetch(
                entity_id, since=since_at, until=until_at, limit=limit_per_entity, options=options
            )
            async with aclosing(pages):
                async for page in pages:
                    result["collected"] += len(page)
                    outcome = store.add(page)
                    result["stored"] += len(outcome["content_ids"])
                    result["added"] += outcome["added"]
                    result["updated"] += outcome["updated"]
                    result["content_ids"].extend(outcome["content_ids"])
        except Exception as exc:  # one entity's failure, whatever it is, must not end the run
            result["error"] = error_info(exc)
            if isinstance(exc, errors.RpcsvcError):
                log.warning("%s %s: %s", connector.name, entity_id, exc)
            else:
                log.exception("%s %s: unexpected failure", connector.name, entity_id)
        return result

    async def worker() -> None:
        for entity_id in queue:
            results[entity_id] = await collect_one(entity_id)
            if on_entity_done is not None:
                on_entity_done(entity_id, results[entity_id])

    async with asyncio.TaskGroup() as group:
        for _ in range(max(1, min(concurrency, len(wanted)))):
            group.create_task(worker())

    entities = {entity_id: results[entity_id] for entity_id in wanted}
    failed = [entity_id for entity_id, r in entities.items() if r["error"]]
    errors_list = [{"entity_id": e, **entities[e]["error"]} for e in failed]
    if wanted and len(failed) == len(wanted):
        raise _all_failed(errors_list)
    all_ids = dict.fromkeys(cid for r in entities.values() for cid in r["content_ids"])
    return {
        "platform": connector.name,
        "entities": entities,
        "total_collected": sum(r["collected"] for r in entities.values()),
        "total_stored": len(all_ids),
        "content_ids": list(all_ids),
        "failed": failed,
        "errors": errors_list,
    }


def _all_failed(errors_list: list[dict[str, Any]]) -> CollectionError:
    """The run's error: of the entities' common class (e.g. EntityNotFound) if they share one."""
    summary = "; ".join(f"{e['entity_id']}: {e['message']}" for e in errors_list[:3])
    more = f" (and {len(errors_list) - 3} more)" if len(errors_list) > 3 else ""
    kinds = {e["type"] for e in errors_list}
    common = getattr(errors, kinds.pop(), None) if len(kinds) == 1 else None
    cls = common if isinstance(common, type) and issubclass(common, CollectionError) else None
    return (cls or CollectionError)(
        f"all {len(errors_list)} entities failed: {summary}{more}", data={"errors": errors_list}
    )
