"""Measures of an interaction graph: central actors, Louvain communities, bridges, and the
graph itself as capped node-link JSON. Exact betweenness is left out: minutes on large graphs.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

import networkx as nx


def ranked(scores: Mapping[str, float], top_n: int) -> list[tuple[str, float]]:
    return sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))[:top_n]


def central_actors(
    graph: nx.DiGraph, pagerank: dict[str, float], labels: dict[str, str], top_n: int
) -> dict[str, list[dict[str, Any]]]:
    in_weight = dict(graph.in_degree(weight="weight"))
    out_weight = dict(graph.out_degree(weight="weight"))
    return {
        "pagerank": [
            {
                "actor": labels[a],
                "key": a,
                "score": round(s, 6),
                "interactions_received": int(in_weight[a]),
                "interactions_made": int(out_weight[a]),
            }
            for a, s in ranked(pagerank, top_n)
        ],
        "in_degree": [
            {
                "actor": labels[a],
                "key": a,
                "interactions": int(w),
                "from_actors": graph.in_degree(a),
            }
            for a, w in ranked(in_weight, top_n)
        ],
        "most_active": [
            {"actor": labels[a], "key": a, "interactions": int(w), "to_actors": graph.out_degree(a)}
            for a, w in ranked(out_weight, top_n)
        ],
    }


def communities_of(graph: nx.DiGraph, seed: int) -> tuple[dict[str, int], list[list[str]]]:
    if graph.number_of_nodes() == 0:
        return {}, []
    undirected = nx.Graph()
    undirected.add_nodes_from(sorted(graph))
    for a, b, data in graph.edges(data=True):
        previous = undirected[a][b]["weight"] if undirected.has_edge(a, b) else 0
        undirected.add_edge(a, b, weight=previous + data["weight"])
    found = nx.community.louvain_communities(undirected, weight="weight", seed=seed)
    communities = sorted((sorted(c) for c in found), key=lambda c: (-len(c), c[0]))
    community_of = {node: k for k, members in enumerate(communities) for node in members}
    return community_of, communities


def describe_community(
    k: int,
    members: list[str],
    graph: nx.DiGraph,
    pagerank: dict[str, float],
    labels: dict[str, str],
    tags_by_actor: dict[str, Counter[str]],
    top_n: int,
) -> dict[str, Any]:
    inside = set(members)
    internal = external = 0
    tags: Counter[str] = Counter()
    for node in members:
        tags.update(tags_by_actor.get(node, {}))
        for _, other, data in graph.out_edges(node, data=True):
            if other in inside:
                internal += data["weight"]
            else:
                external += data["weight"]
        external += sum(
            d["weight"] for o, _, d in graph.in_edges(node, data=True) if o not in inside
        )
    top = ranked({m: pagerank[m] for m in members}, min(top_n, 5))
    return {
        "id": k,
        "size": len(members),
        "top_members": [labels[m] for m, _ in top],
        "top_hashtags": [
            "#" + t for t, _ in sorted(tags.items(), key=lambda kv: (-kv[1], kv[0]))[:5]
        ],
        "internal_weight": int(internal),
        "external_weight": int(external),
    }


def bridges(
    graph: nx.DiGraph, community_of: dict[str, int], labels: dict[str, str], top_n: int
) -> dict[str, list[dict[str, Any]]]:
    pair_weight: Counter[tuple[int, int]] = Counter()
    pair_edges: Counter[tuple[int, int]] = Counter()
    reached: dict[str, set[int]] = {}
    external: Counter[str] = Counter()
    for a, b, data in graph.edges(data=True):
        ca, cb = community_of[a], community_of[b]
        if ca == cb:
            continue
        pair = (min(ca, cb), max(ca, cb))
        pair_weight[pair] += data["weight"]
        pair_edges[pair] += 1
        for node, other in ((a, cb), (b, ca)):
            reached.setdefault(node, set()).add(other)
            external[node] += data["weight"]
    pairs = sorted(pair_weight.items(), key=lambda kv: (-kv[1], kv[0]))[:top_n]
    actors = sorted(reached, key=lambda n: (-len(reached[n]), -external[n], n))[:top_n]
    return {
        "community_pairs": [
            {"communities": list(pair), "weight": int(w), "edges": pair_edges[pair]}
            for pair, w in pairs
        ],
        "actors": [
            {
                "actor": labels[n],
                "key": n,
                "community": community_of[n],
                "communities_reached": len(reached[n]),
                "external_weight": int(external[n]),
            }
            for n in actors
        ],
    }


def node_link(
    graph: nx.DiGraph,
    pagerank: dict[str, float],
    community_of: dict[str, int],
    labels: dict[str, str],
    max_nodes: int,
) -> dict[str, Any]:
    """Node-link JSON (readable by ``nx.node_link_graph(data, edges="links")``), capped."""
    kept = [n for n, _ in ranked(pagerank, max_nodes)]
    keep = set(kept)
    links = [
        {
            "source": a,
            "target": b,
            "weight": d["weight"],
            "replies": d["replies"],
            "mentions": d["mentions"],
        }
        for a, b, d in sorted(graph.edges(data=True), key=lambda e: (e[0], e[1]))
        if a in keep and b in keep
    ]
    return {
        "directed": True,
        "multigraph": False,
        "graph": {
            "truncated": len(kept) < graph.number_of_nodes(),
            "total_nodes": graph.number_of_nodes(),
            "total_edges": graph.number_of_edges(),
            "kept_by": f"top {max_nodes} nodes by PageRank, edges among them",
        },
        "nodes": [
            {
                "id": n,
                "label": labels[n],
                "pagerank": round(pagerank[n], 6),
                "community": community_of[n],
                "in_weight": int(graph.in_degree(n, weight="weight")),
                "out_weight": int(graph.out_degree(n, weight="weight")),
            }
            for n in kept
        ],
        "links": links,
    }
