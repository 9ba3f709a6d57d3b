"""``analyze_content`` inside the pool: per-post work on a chunk, then the merge of chunks."""

from __future__ import annotations

from typing import Any

from . import sentiment

LABELS = ("positive", "neutral", "negative")


def analyze_chunk(
    posts: list[tuple[Any, str]], analysis_types: tuple[str, ...], with_rows: bool
) -> dict[str, Any]:
    """Per-post analysis of ``(id, text)`` pairs, and the partial aggregates of the chunk."""
    rows: list[dict[str, Any]] = []
    compound_sum = 0.0
    label_counts = dict.fromkeys(LABELS, 0)
    want_sentiment = "sentiment" in analysis_types
    for post_id, text in posts:
        row: dict[str, Any] = {"id": post_id}
        if want_sentiment:
            scores = sentiment.score(text)
            compound_sum += scores["compound"]  # type: ignore[operator]
            label_counts[scores["label"]] += 1  # type: ignore[index]
            row.update(scores)
        if with_rows:
            rows.append(row)
    return {
        "rows": rows,
        "count": len(posts),
        "compound_sum": compound_sum,
        "label_counts": label_counts,
    }


def merge_chunks(
    analysis_types: tuple[str, ...], with_rows: bool, partials: list[dict[str, Any]]
) -> dict[str, Any]:
    """The task's result from its chunks' partial results, in input order."""
    count = sum(p["count"] for p in partials)
    summary: dict[str, Any] = {"count": count}
    if "sentiment" in analysis_types:
        label_counts = dict.fromkeys(LABELS, 0)
        for partial in partials:
            for label, n in partial["label_counts"].items():
                label_counts[label] += n
        compound_sum = sum(p["compound_sum"] for p in partials)
        summary["mean_compound"] = round(compound_sum / count, 4) if count else None
        summary["labels"] = label_counts
    result: dict[str, Any] = {"summary": summary}
    if with_rows:
        result["posts"] = [row for partial in partials for row in partial["rows"]]
    return result
