"""What the Markdown and HTML reports share: the headline figures, table rows and which time
series (by day or by hour) tells the sentiment's course."""

from __future__ import annotations

from typing import Any


def headline_figures(data: dict[str, Any]) -> list[tuple[str, str]]:
    figures: list[tuple[str, str]] = []
    sentiment = data.get("sentiment") or {}
    if sentiment.get("count"):
        n = sentiment["count"]
        labels = sentiment.get("labels", {})
        figures += [
            ("posts", f"{n:,}"),
            ("mean sentiment", f"{sentiment.get('mean_compound', 0):+.3f}"),
            ("positive", f"{labels.get('positive', 0) / n:.0%}"),
            ("negative", f"{labels.get('negative', 0) / n:.0%}"),
        ]
    summary = (data.get("relationships") or {}).get("summary") or {}
    if summary:
        figures += [("actors in graph", f"{summary['nodes']:,}")]
        figures += [("interactions", f"{summary['interactions']:,}")]
    return figures


def rows_topics(data: dict[str, Any]) -> list[list[str]]:
    return [
        [str(t["id"]), ", ".join(t["terms"][:8]), f"{t['size']:,}", f"{t['weight']:.1%}"]
        for t in data.get("topics") or []
    ]


def rows_actors(rel: dict[str, Any]) -> list[list[str]]:
    return [
        [a["actor"], f"{a['score']:.4f}", f"{a['interactions_received']:,}"]
        for a in rel.get("central", {}).get("pagerank", [])
    ]


def rows_communities(rel: dict[str, Any]) -> list[list[str]]:
    return [
        [
            str(c["id"]),
            f"{c['size']:,}",
            ", ".join(c["top_members"]),
            ", ".join(c["top_hashtags"]) or "-",
        ]
        for c in rel.get("communities", {}).get("items", [])
    ]


def time_series(sentiment: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    """Days when the posts span several, else hours (one day's posts still show a course)."""
    days = sentiment.get("by_day") or []
    if len(days) > 1 or not sentiment.get("by_hour"):
        return "day", days
    return "hour", sentiment["by_hour"]
