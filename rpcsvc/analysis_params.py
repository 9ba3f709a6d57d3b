"""What the analysis task types take: their params schemas, and their inputs read from
``texts``, ``posts`` or ``content_ids`` (the content store), checked before anything runs."""

from __future__ import annotations

from typing import Any

from workers import content, relationships

from . import errors
from .content import resolve_posts
from .manager import TaskContext

ANALYSIS_TYPES = list(content.ANALYSIS_TYPES)

# analyze_content's options beside its input; tasktypes.ANALYZE_CONTENT_SCHEMA includes them.
CONTENT_OPTIONS_SCHEMA: dict[str, Any] = {
    "k": {
        "type": ["integer", "null"],
        "minimum": 1,
        "maximum": 50,
        "default": None,
        "description": "Number of topics; null chooses it from the data (2..12)",
    },
    "top_n": {
        "type": "integer",
        "minimum": 1,
        "maximum": 200,
        "default": 20,
        "description": "Length of the entities, hashtags and keywords lists",
    },
    "seed": {"type": "integer", "default": 0, "description": "Seed of the topic model"},
}

GRAPH_OPTIONS_SCHEMA: dict[str, Any] = {
    "max_graph_nodes": {
        "type": "integer",
        "minimum": 1,
        "maximum": 5000,
        "default": 500,
        "description": "Nodes kept in the node-link graph (highest PageRank first)",
    },
    "seed": {"type": "integer", "default": 0, "description": "Seed of Louvain communities"},
}

ANY_POSTS = {
    "type": "array",
    "items": {"type": "object"},
    "description": "Posts in any shape: normalised, Reddit (Pushshift) or Mastodon",
}
CONTENT_IDS = {
    "type": "array",
    "items": {"type": "string"},
    "description": "Posts in the content store",
}

RELATIONSHIPS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "posts": ANY_POSTS,
        "content_ids": CONTENT_IDS,
        **GRAPH_OPTIONS_SCHEMA,
        "top_n": {
            "type": "integer",
            "minimum": 1,
            "maximum": 100,
            "default": 10,
            "description": "Entries in each ranking (central actors, communities, bridges)",
        },
    },
}

REPORT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "format": {"enum": ["html", "markdown", "json"], "default": "html"},
        "title": {"type": "string", "minLength": 1, "maxLength": 200},
        "task_ids": {
            "type": "array",
            "items": {"type": "string"},
            "minItems": 1,
            "maxItems": 2,
            "uniqueItems": True,
            "description": "Finished analyze_content and/or analyze_relationships tasks "
            "(at most one of each)",
        },
        "posts": ANY_POSTS,
        "content_ids": CONTENT_IDS,
        "k": CONTENT_OPTIONS_SCHEMA["k"],
        **GRAPH_OPTIONS_SCHEMA,
    },
}
REPORT_SOURCES = ("task_ids", "posts", "content_ids")

EXAMPLE_POSTS = [
    {"id": "1", "author": "ann", "text": "Great debate tonight! @bob #midterms"},
    {"id": "2", "author": "bob", "text": "Agreed, vote early", "reply_to": {"post": "1"}},
]
SOURCE_TYPES = ("analyze_content", "analyze_relationships")


def content_items(params: dict[str, Any], context: TaskContext) -> list[content.Item]:
    """``(id, text, created)`` of each post of ``texts``, ``posts`` or ``content_ids``."""
    if "texts" in params:
        return [(i, text, None) for i, text in enumerate(params["texts"])]
    if "content_ids" in params:
        stored = resolve_posts(context, params["content_ids"])
        return [(p["content_id"], p["text"] or "", p.get("created_at")) for p in stored]
    return [
        (post.get("id", i), post["text"], created_of(post))
        for i, post in enumerate(params["posts"])
    ]


def one_source(params: dict[str, Any], sources: tuple[str, ...], context: TaskContext) -> str:
    """The one input of ``sources`` given, within ``max_posts_per_task``."""
    given = [key for key in sources if key in params]
    if len(given) != 1:
        raise errors.InvalidParams(
            "params", f"give exactly one of {', '.join(sources)}", given=given
        )
    source = given[0]
    limit = context.settings.max_posts_per_task
    if source != "task_ids" and len(params[source]) > limit:
        count = len(params[source])
        raise errors.LimitExceeded(
            f"params.{source}: {count} items exceeds max_posts_per_task={limit}",
            data={"field": f"params.{source}", "max": limit, "got": count},
        )
    return source


def posts_of(params: dict[str, Any], context: TaskContext) -> list[dict[str, Any]]:
    """Whole posts (inline, or the stored ones) for the steps that read more than the text."""
    if "content_ids" in params:
        return resolve_posts(context, params["content_ids"])
    return list(params["posts"])


def graph_input(posts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The posts with the fields the graph reads, and only those: what travels to a worker is
    pickled and unpickled once more."""
    return [relationships.fields_read(post) for post in posts]


def graph_options(params: dict[str, Any]) -> relationships.GraphOptions:
    return relationships.GraphOptions(
        max_graph_nodes=params["max_graph_nodes"],
        top_n=params.get("top_n", 10),
        seed=params["seed"],
    )


def created_of(post: dict[str, Any]) -> object:
    """A post's time: ``created_at`` (normalised posts) or ``created_utc`` (Reddit)."""
    for key in ("created_at", "created_utc"):
        if post.get(key) is not None:
            return post[key]
    return None
