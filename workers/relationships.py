"""Who talks to whom: the interaction graph of a set of posts and its hashtag co-occurrence.

Accepts three post shapes, mixed freely:
- normalised posts: ``id``, ``author`` (``{id, handle, name}`` or a string), ``text``,
  ``reply_to`` (``{post, author}``), ``mentions``, ``hashtags``;
- Reddit (Pushshift) comments and submissions: ``id``, ``author``, ``body``/``title``,
  ``parent_id`` (``t1_<comment>`` / ``t3_<submission>``); the replied-to author is looked up
  among the posts of the set;
- Mastodon statuses: ``account``, ``in_reply_to_account_id`` / ``in_reply_to_id``,
  ``mentions`` (``[{id, acct}]``), ``tags`` (``[{name}]``), ``content``.

Edges go author -> replied-to author and author -> mentioned account, weighted by how often.
Deleted accounts ("[deleted]", "[removed]") and self-replies are left out and counted.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import networkx as nx

from workers import graph_measures
from workers.text import HASHTAG_RE, MENTION_RE, REDDIT_USER_RE, normalize_handle

_DELETED = frozenset({"", "[deleted]", "[removed]", "deleted", "removed"})


@dataclass(frozen=True, slots=True)
class GraphOptions:
    """`analyze_relationships`'s options, as one picklable value for a pool call."""

    max_graph_nodes: int = 500
    top_n: int = 10
    seed: int = 0


# Every field `analyze_relationships` reads, in any of the three shapes.
FIELDS_READ = frozenset(
    {
        "id", "content_id", "uri", "url", "name",  # the post's ids
        "author", "account", "author_id",
        "reply_to", "parent_id", "in_reply_to_account_id", "in_reply_to_id",
        "mentions", "hashtags", "tags",
        "text", "body", "title", "selftext", "content",
    }
)  # fmt: skip


def fields_read(post: Mapping[str, Any]) -> dict[str, Any]:
    """The part of a post the analysis reads: a raw Pushshift comment has 48 fields, and
    sending all of them to a worker cost more than building the graph."""
    return {key: value for key, value in post.items() if key in FIELDS_READ}


def analyze_with(posts: list[dict[str, Any]], options: GraphOptions) -> dict[str, Any]:
    """`analyze_relationships` with its options in one value (the task type's pool call)."""
    return analyze_relationships(
        posts, max_graph_nodes=options.max_graph_nodes, seed=options.seed, top_n=options.top_n
    )


def analyze_relationships(
    posts: list[dict[str, Any]], *, max_graph_nodes: int = 500, seed: int = 0, top_n: int = 10
) -> dict[str, Any]:
    """Graph size, central actors, communities, bridges, hashtag pairs and the graph itself.

    Result: ``{"summary", "central": {"pagerank", "in_degree", "most_active"}, "communities":
    {"count", "items": [{"id", "size", "top_members", "top_hashtags", "internal_weight",
    "external_weight"}]}, "bridges": {"community_pairs", "actors"}, "hashtags": {"nodes",
    "edges", "top_pairs"}, "graph": node-link JSON}``. The graph keeps the `max_graph_nodes`
    actors of highest PageRank (ties by name) and the edges among them; ``truncated`` and the
    totals say what was left out. Communities are Louvain's (seeded) on the undirected,
    weight-summed graph; bridges are the community pairs joined by most weight and the actors
    whose edges reach most other communities (no exact betweenness: minutes on large graphs).
    """
    if not isinstance(posts, list):
        raise ValueError(f"posts: must be a list of objects, got {type(posts).__name__}")
    for name, value in (("max_graph_nodes", max_graph_nodes), ("top_n", top_n)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name}: must be a positive integer, got {value!r}")
    parsed = [_parse(i, post) for i, post in enumerate(posts)]
    graph, skipped, labels = _interaction_graph(parsed)
    tag_graph = _hashtag_graph(parsed)
    pagerank = nx.pagerank(graph, weight="weight") if graph.number_of_nodes() else {}
    community_of, communities = graph_measures.communities_of(graph, seed)
    tags_by_actor: dict[str, Counter[str]] = {}
    for post in parsed:
        if post["author"] is not None and post["hashtags"]:
            tags_by_actor.setdefault(post["author"], Counter()).update(post["hashtags"])
    return {
        "summary": {
            "posts": len(posts),
            "authors": len({p["author"] for p in parsed if p["author"] is not None}),
            "nodes": graph.number_of_nodes(),
            "edges": graph.number_of_edges(),
            "interactions": int(graph.size(weight="weight")),
            "replies": sum(int(d["replies"]) for _, _, d in graph.edges(data=True)),
            "mentions": sum(int(d["mentions"]) for _, _, d in graph.edges(data=True)),
            "skipped": skipped,
        },
        "central": graph_measures.central_actors(graph, pagerank, labels, top_n),
        "communities": {
            "count": len(communities),
            "items": [
                graph_measures.describe_community(
                    k, members, graph, pagerank, labels, tags_by_actor, top_n
                )
                for k, members in enumerate(communities[:top_n])
            ],
        },
        "bridges": graph_measures.bridges(graph, community_of, labels, top_n),
        "hashtags": {
            "nodes": tag_graph.number_of_nodes(),
            "edges": tag_graph.number_of_edges(),
            "top_pairs": [
                {"tags": sorted((a, b)), "posts": int(d["weight"])}
                for a, b, d in sorted(
                    tag_graph.edges(data=True),
                    key=lambda e: (-e[2]["weight"], *sorted((e[0], e[1]))),
                )[:top_n]
            ],
        },
        "graph": graph_measures.node_link(graph, pagerank, community_of, labels, max_graph_nodes),
    }


# --- Reading the three post shapes --------------------------------------------------------


def _parse(index: int, post: object) -> dict[str, Any]:
    if not isinstance(post, Mapping):
        raise ValueError(f"posts[{index}]: must be an object, got {type(post).__name__}")
    author, display, account_id = _author(post)
    text = post_text(post)
    return {
        "ids": _ids(post),
        "author": author,
        "display": display,
        "account_id": account_id,
        "reply": _reply(post),
        "mentions": _mentions(post, text),
        "hashtags": _hashtags(post, text),
    }


def _author(post: Mapping[str, Any]) -> tuple[str | None, str | None, str | None]:
    """(key, display name, platform account id) of the post's author."""
    raw = post.get("author", post.get("account"))
    if isinstance(raw, Mapping):
        handle = raw.get("handle") or raw.get("acct") or raw.get("username") or raw.get("id")
        account_id = raw.get("id")
        display = str(raw.get("name") or raw.get("display_name") or handle or "")
    else:
        handle, account_id, display = raw, post.get("author_id"), str(raw or "")
    if handle is None or str(handle).strip().lower() in _DELETED:
        return None, None, None
    key = normalize_handle(str(handle))
    return key, display or key, None if account_id is None else str(account_id)


def post_text(post: Mapping[str, Any]) -> str:
    """The words of a post in any of the three shapes (Reddit: title and body together)."""
    parts = [post.get(field) for field in ("text", "body", "title", "selftext")]
    content = post.get("content")
    if isinstance(content, str) and content:
        if "<" in content:  # a Mastodon status: HTML
            from workers.collection.mastodon import html_to_text

            content = html_to_text(content)[0]
        parts.append(content)
    return "\n".join(p for p in parts if isinstance(p, str) and p)


def _ids(post: Mapping[str, Any]) -> list[str]:
    # content_id: store posts reply to their parent by content_id ("reddit:t1_x")
    fields = ("id", "content_id", "uri", "url")
    ids = [str(post[field]) for field in fields if post.get(field) is not None]
    if post.get("name"):  # Reddit fullname "t1_abc"
        ids.append(str(post["name"]))
    return ids


def _reply(post: Mapping[str, Any]) -> dict[str, str | None] | None:
    """What the post replies to: an author key if known, else a post id to resolve."""
    reply_to = post.get("reply_to")
    if isinstance(reply_to, Mapping):
        author = reply_to.get("author")
        if isinstance(author, Mapping):
            author = author.get("handle") or author.get("acct") or author.get("id")
        return {
            "author": None if author is None else str(author),
            "post": None if reply_to.get("post") is None else str(reply_to["post"]),
            "account_id": None,
        }
    parent = post.get("parent_id")
    if isinstance(parent, str) and parent:
        return {"author": None, "post": parent.split("_", 1)[-1], "account_id": None}
    account = post.get("in_reply_to_account_id")
    status = post.get("in_reply_to_id")
    if account is not None or status is not None:
        return {
            "author": None,
            "post": None if status is None else str(status),
            "account_id": None if account is None else str(account),
        }
    return None


def _mentions(post: Mapping[str, Any], text: str) -> list[str]:
    given = post.get("mentions")
    if isinstance(given, list) and given:  # an empty list: the platform did not say (Reddit)
        keys = []
        for m in given:
            handle = (
                (m.get("handle") or m.get("acct") or m.get("username"))
                if isinstance(m, Mapping)
                else m
            )
            if handle:
                keys.append(normalize_handle(str(handle)))
        return list(dict.fromkeys(keys))
    found = (
        [m.group(1) + (m.group(2) or "") for m in MENTION_RE.finditer(text)] if "@" in text else []
    )
    if "u/" in text:
        found += [m.group(1) for m in REDDIT_USER_RE.finditer(text)]
    return list(dict.fromkeys(normalize_handle(h) for h in found))


def _hashtags(post: Mapping[str, Any], text: str) -> list[str]:
    given = post.get("hashtags", post.get("tags"))
    if isinstance(given, list) and given:
        names = [t.get("name") if isinstance(t, Mapping) else t for t in given]
        return sorted({str(n).lstrip("#").casefold() for n in names if n})
    return sorted({m.group(1).casefold() for m in HASHTAG_RE.finditer(text)}) if "#" in text else []


# --- Graphs -----------------------------------------------------------------------------


def _interaction_graph(
    parsed: list[dict[str, Any]],
) -> tuple[nx.DiGraph, dict[str, int], dict[str, str]]:
    author_of_post: dict[str, str] = {}
    handle_of_account: dict[str, str] = {}
    labels: dict[str, str] = {}
    for post in parsed:
        for post_id in post["ids"]:
            # A deleted author maps to "" so that replies to it count as deleted_target.
            author_of_post[post_id] = post["author"] or ""
        if post["author"] is None:
            continue
        labels.setdefault(post["author"], post["display"])
        if post["account_id"] is not None:
            handle_of_account[post["account_id"]] = post["author"]
    graph = nx.DiGraph()
    skipped = Counter({"no_author": 0, "self": 0, "unresolved_replies": 0, "deleted_target": 0})
    for post in parsed:
        source = post["author"]
        if source is None:
            skipped["no_author"] += 1
            continue
        graph.add_node(source)
        reply = post["reply"]
        if reply is not None:
            target = _reply_target(reply, author_of_post, handle_of_account)
            if target is None:
                skipped["unresolved_replies"] += 1
            elif target in _DELETED:
                skipped["deleted_target"] += 1
            else:
                _add_edge(graph, source, target, "replies", skipped)
        for target in post["mentions"]:
            _add_edge(graph, source, target, "mentions", skipped)
    graph.remove_nodes_from([n for n in list(graph) if graph.degree(n) == 0])
    for node in graph:
        labels.setdefault(node, node)
    return graph, dict(skipped), labels


def _reply_target(
    reply: dict[str, str | None], author_of_post: dict[str, str], handle_of_account: dict[str, str]
) -> str | None:
    if reply["author"]:
        return normalize_handle(reply["author"])
    if reply["post"] is not None and reply["post"] in author_of_post:
        return author_of_post[reply["post"]]
    if reply["account_id"] is not None:
        return handle_of_account.get(reply["account_id"])
    return None


def _add_edge(
    graph: nx.DiGraph, source: str, target: str, kind: str, skipped: Counter[str]
) -> None:
    if source == target:
        skipped["self"] += 1
        return
    if graph.has_edge(source, target):
        data = graph[source][target]
    else:
        graph.add_edge(source, target, weight=0, replies=0, mentions=0)
        data = graph[source][target]
    data["weight"] += 1
    data[kind] += 1


def _hashtag_graph(parsed: Iterable[dict[str, Any]]) -> nx.Graph:
    pairs: Counter[tuple[str, str]] = Counter()
    tags: set[str] = set()
    for post in parsed:
        tags.update(post["hashtags"])
        pairs.update(itertools.combinations(post["hashtags"], 2))  # sorted, so (a, b) is unique
    graph = nx.Graph()
    graph.add_nodes_from(tags)
    graph.add_weighted_edges_from((a, b, n) for (a, b), n in pairs.items())
    return graph
