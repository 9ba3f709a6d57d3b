"""Entities in aggregate: additive partial counts, so chunks merge to the one-pass result.

Counts are posts: an entity repeated inside one post counts once. A chunk's rows are counted
where they are extracted (`count_entities`), the partials of a task are added
(`merge_entity_counts`) and the sum is ranked once (`finalize_entities`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, TypedDict

from workers.entities import extract_entities
from workers.text import normalize_handle, url_domain


class EntityPartial(TypedDict):
    posts: int
    mentions: dict[str, int]
    hashtags: dict[str, dict[str, int]]  # folded tag -> spelling -> posts
    cashtags: dict[str, int]
    domains: dict[str, int]
    names: dict[str, dict[str, int]]  # name -> kind -> posts


def count_entities(rows: Iterable[Mapping[str, Any]]) -> EntityPartial:
    """Partial counts over `extract_entities` results (one chunk's worth)."""
    partial = _empty_partial()
    for row in rows:
        partial["posts"] += 1
        for mention in row.get("mentions", ()):
            key = normalize_handle(mention)
            partial["mentions"][key] = partial["mentions"].get(key, 0) + 1
        for tag in row.get("hashtags", ()):
            spellings = partial["hashtags"].setdefault(tag.lstrip("#").casefold(), {})
            spellings[tag] = spellings.get(tag, 0) + 1
        for cashtag in row.get("cashtags", ()):
            partial["cashtags"][cashtag] = partial["cashtags"].get(cashtag, 0) + 1
        for domain in dict.fromkeys(url_domain(u) for u in row.get("urls", ())):
            partial["domains"][domain] = partial["domains"].get(domain, 0) + 1
        for name in row.get("names", ()):
            kinds = partial["names"].setdefault(name["text"], {})
            kinds[name["kind"]] = kinds.get(name["kind"], 0) + 1
    return partial


def merge_entity_counts(parts: Iterable[EntityPartial]) -> EntityPartial:
    """Sum of partial counts; equal to `count_entities` over all rows at once."""
    total = _empty_partial()
    for part in parts:
        total["posts"] += part["posts"]
        _add(total["mentions"], part["mentions"])
        _add(total["cashtags"], part["cashtags"])
        _add(total["domains"], part["domains"])
        for key, spellings in part["hashtags"].items():
            _add(total["hashtags"].setdefault(key, {}), spellings)
        for key, kinds in part["names"].items():
            _add(total["names"].setdefault(key, {}), kinds)
    return total


def _add(into: dict[str, int], counts: Mapping[str, int]) -> None:
    for key, n in counts.items():
        into[key] = into.get(key, 0) + n


def finalize_entities(partial: EntityPartial, top_n: int = 20) -> dict[str, object]:
    """Top entities by posts: ``{"posts", "distinct": {field: n}, "mentions": [{"text",
    "count"}], "hashtags": [{"text", "count"}], "cashtags", "domains", "names": [{"text",
    "kind", "count"}]}``, ties broken alphabetically. A hashtag shows its most used spelling;
    a name the kind it was most often given."""
    hashtags = {
        _most_common_key(spellings): sum(spellings.values())
        for spellings in partial["hashtags"].values()
    }
    ranked = sorted(partial["names"].items(), key=lambda kv: (-sum(kv[1].values()), kv[0]))
    names = [
        {"text": name, "kind": _most_common_key(kinds), "count": sum(kinds.values())}
        for name, kinds in ranked[:top_n]
    ]
    return {
        "posts": partial["posts"],
        "distinct": {
            "mentions": len(partial["mentions"]),
            "hashtags": len(partial["hashtags"]),
            "cashtags": len(partial["cashtags"]),
            "domains": len(partial["domains"]),
            "names": len(partial["names"]),
        },
        "mentions": _top({"@" + k: n for k, n in partial["mentions"].items()}, top_n),
        "hashtags": _top(hashtags, top_n),
        "cashtags": _top(partial["cashtags"], top_n),
        "domains": _top(partial["domains"], top_n),
        "names": names,
    }


def hashtag_counts(texts: Iterable[str], top_n: int | None = 20) -> list[dict[str, object]]:
    """Most used hashtags over `texts` as ``[{"text": "#Tag", "count": posts}]``."""
    partial = count_entities({"hashtags": extract_entities(t)["hashtags"]} for t in texts)
    hashtags = {_most_common_key(s): sum(s.values()) for s in partial["hashtags"].values()}
    return _top(hashtags, top_n)


def _empty_partial() -> EntityPartial:
    return EntityPartial(posts=0, mentions={}, hashtags={}, cashtags={}, domains={}, names={})


def _most_common_key(counts: Mapping[str, int]) -> str:
    return min(counts, key=lambda key: (-counts[key], key))


def _top(counts: Mapping[str, int], top_n: int | None) -> list[dict[str, object]]:
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return [{"text": key, "count": n} for key, n in ranked[:top_n]]
