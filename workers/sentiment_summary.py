"""Sentiment in aggregate: additive partial summaries, so chunks merge to the one-pass result.

A chunk of posts is summarised where it is scored (`summarize_sentiment`), the partials of a
task's chunks are added (`merge_sentiment_summaries`) and the sum is put in report form once
(`finalize_sentiment`): the label counts, a histogram of compound scores and the course by day
and by hour, identical however the posts were split.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from typing import TypedDict

from workers.sentiment import LABELS, label_for
from workers.text import post_hour

HISTOGRAM_BINS = 20  # compound in [-1, 1] in steps of 0.1
HISTOGRAM_EDGES = tuple(round(-1 + 2 * k / HISTOGRAM_BINS, 2) for k in range(HISTOGRAM_BINS + 1))


class SentimentPartial(TypedDict):
    """Additive sums; every field of two partials can simply be added."""

    count: int
    compound_sum: float
    labels: dict[str, int]
    histogram: list[int]
    # period ("YYYY-MM-DD" / "YYYY-MM-DDTHH") -> count, compound_sum and one count per label
    by_day: dict[str, dict[str, float]]
    by_hour: dict[str, dict[str, float]]


def summarize_sentiment(
    scores: Iterable[Mapping[str, object]], created: Iterable[object] | None = None
) -> SentimentPartial:
    """Partial summary of score rows (from `score`); `created` gives each row's timestamp
    (epoch seconds, ISO 8601 or datetime; None for undated) for the per-day and per-hour
    series. Merge partials with `merge_sentiment_summaries`, then `finalize_sentiment`."""
    partial = SentimentPartial(
        count=0,
        compound_sum=0.0,
        labels=dict.fromkeys(LABELS, 0),
        histogram=[0] * HISTOGRAM_BINS,
        by_day={},
        by_hour={},
    )
    moments = iter(created) if created is not None else itertools.repeat(None)
    for row, moment in zip(scores, moments, strict=False):
        compound = float(row["compound"])  # type: ignore[arg-type]
        label = label_for(compound)
        partial["count"] += 1
        partial["compound_sum"] += compound
        partial["labels"][label] += 1
        partial["histogram"][_histogram_bin(compound)] += 1
        hour = post_hour(moment) if moment is not None else None
        if hour is not None:
            for series, period in ((partial["by_hour"], hour), (partial["by_day"], hour[:10])):
                bucket = series.setdefault(period, _empty_period())
                bucket["count"] += 1
                bucket["compound_sum"] += compound
                bucket[label] += 1
    return partial


def merge_sentiment_summaries(parts: Iterable[SentimentPartial]) -> SentimentPartial:
    """Sum of partial summaries (chunk results), equal to summarising all rows at once."""
    parts = list(parts)
    if len(parts) == 1:
        return parts[0]  # a one-chunk task (most small tasks): nothing to add up
    total = summarize_sentiment(())
    for part in parts:
        total["count"] += part["count"]
        total["compound_sum"] += part["compound_sum"]
        for label in LABELS:
            total["labels"][label] += part["labels"][label]
        pairs = zip(total["histogram"], part["histogram"], strict=True)
        total["histogram"] = [a + b for a, b in pairs]
        for field in ("by_day", "by_hour"):
            for period, sums in part[field].items():
                bucket = total[field].setdefault(period, _empty_period())
                for key, value in sums.items():
                    bucket[key] += value
    return total


def finalize_sentiment(partial: SentimentPartial) -> dict[str, object]:
    """Report form: means and shares, the histogram with its bin edges, periods in order.

    ``{"count", "mean_compound", "labels", "histogram": {"edges", "counts"},
    "by_day": [{"period", "count", "mean_compound", "positive", "neutral", "negative"}],
    "by_hour": [...same...]}`` (hours as "YYYY-MM-DDTHH", UTC).
    """
    count = partial["count"]
    return {
        "count": count,
        "mean_compound": round(partial["compound_sum"] / count, 4) if count else 0.0,
        "labels": dict(partial["labels"]),
        "histogram": {
            "edges": list(HISTOGRAM_EDGES),
            "counts": list(partial["histogram"]),
        },
        "by_day": _series(partial["by_day"]),
        "by_hour": _series(partial["by_hour"]),
    }


def _series(periods: dict[str, dict[str, float]]) -> list[dict[str, object]]:
    return [
        {
            "period": period,
            "count": int(sums["count"]),
            "mean_compound": round(sums["compound_sum"] / sums["count"], 4),
            **{label: int(sums[label]) for label in LABELS},
        }
        for period, sums in sorted(periods.items())
    ]


def _histogram_bin(compound: float) -> int:
    return max(0, min(HISTOGRAM_BINS - 1, int((compound + 1.0) * HISTOGRAM_BINS / 2)))


def _empty_period() -> dict[str, float]:
    return {"count": 0, "compound_sum": 0.0, **dict.fromkeys(LABELS, 0)}
