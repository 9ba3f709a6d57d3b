"""``analyze_content`` inside the pool: per-post chunks, one whole-set step, and their merge.

A task's posts are ``(id, text, created)`` items. Per-post work (sentiment, entities) runs on
chunks, on any worker, and each chunk returns its rows and *additive* partial aggregates, so
that any split merges to the one-pass result. Whole-set work (topics, keywords) needs every
text at once: it runs once, as its own pool call beside the chunks (it only needs the texts,
not the chunks' results), so on two workers it overlaps the per-post work instead of
following it. The merge is then sums and a concatenation, cheap enough for the server.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from workers import entities, entity_counts, sentiment, sentiment_summary
from workers.text import HASHTAG_RE

ANALYSIS_TYPES = ("sentiment", "topics", "entities", "keywords")
WHOLE_SET_TYPES = frozenset({"topics", "keywords"})

Item = tuple[Any, str, object]  # (post id, text, created: epoch seconds / ISO 8601 / None)


@dataclass(frozen=True, slots=True)
class ContentOptions:
    """What to compute; travels with every chunk (small and picklable)."""

    analysis_types: tuple[str, ...] = ANALYSIS_TYPES
    with_rows: bool = True
    k: int | None = None  # topics; None: chosen from the data
    top_n: int = 20  # entries in the entities, hashtags and keywords lists
    seed: int = 0
    # Chunks hand their rows back as JSON text, which the server's merge joins without making
    # a dict per row (a bulk task's rows are then never Python objects in the server). Not
    # with topics: each row's topic comes from the whole-set step, after the chunks.
    rows_as_json: bool = False

    def wants(self, analysis_type: str) -> bool:
        return analysis_type in self.analysis_types

    @property
    def whole_set(self) -> bool:
        return not WHOLE_SET_TYPES.isdisjoint(self.analysis_types)

    @property
    def hashtags(self) -> bool:
        """Hashtag frequency goes with topics (what is talked about) and with entities."""
        return self.wants("topics") or self.wants("entities")


def init() -> None:
    """Pool initializer hook: load the per-post analysers' state (lexicon, gazetteer)."""
    sentiment.init()
    entities.init()


def analyze_posts(items: Sequence[Item], options: ContentOptions) -> dict[str, Any]:
    """A whole small task in one pool call: the chunk, the whole-set step and the merge."""
    partials = [analyze_chunk(items, options)]
    if options.whole_set:
        partials.append(analyze_whole_set([text for _, text, _ in items], options))
    return merge_chunks(options, partials)


def analyze_chunk(items: Sequence[Item], options: ContentOptions) -> dict[str, Any]:
    """Per-post analysis of a chunk: its rows (if asked) and its partial aggregates."""
    want_sentiment, want_entities = options.wants("sentiment"), options.wants("entities")
    want_tags = options.hashtags and not want_entities  # entities count hashtags themselves
    rows: list[dict[str, Any]] = []
    scores: list[dict[str, Any]] = []
    found: list[entities.PostEntities] = []
    tags: dict[str, dict[str, int]] = {}
    for post_id, text, _ in items:
        row: dict[str, Any] = {"id": post_id}
        if want_sentiment:
            score = sentiment.score(text)
            scores.append(score)
            row.update(score)
        if want_entities:
            post_entities = entities.extract_entities(text)
            found.append(post_entities)
            row["entities"] = post_entities
        elif want_tags and "#" in text:
            _count_hashtags(text, tags)
        if options.with_rows:
            rows.append(row)
    partial: dict[str, Any] = {"kind": "posts", "count": len(items), "rows": rows}
    if options.rows_as_json:
        partial["rows"] = orjson.dumps(rows)
    if want_sentiment:
        created = [moment for _, _, moment in items]
        partial["sentiment"] = sentiment_summary.summarize_sentiment(scores, created)
    if want_entities:
        partial["entities"] = entity_counts.count_entities(found)
    elif want_tags:
        partial["hashtags"] = tags
    return partial


def _count_hashtags(text: str, into: dict[str, dict[str, int]]) -> None:
    """Post counts per hashtag (case folded) and spelling, as `entity_counts` keeps them."""
    seen: set[str] = set()
    for match in HASHTAG_RE.finditer(text):
        key = match.group(1).casefold()
        if key not in seen:
            seen.add(key)
            spellings = into.setdefault(key, {})
            spelling = "#" + match.group(1)
            spellings[spelling] = spellings.get(spelling, 0) + 1


def analyze_whole_set(texts: list[str], options: ContentOptions) -> dict[str, Any]:
    """Topics (with each post's topic when rows are wanted) and key phrases of all texts."""
    partial: dict[str, Any] = {"kind": "whole_set"}
    if options.wants("topics"):
        from workers import topics  # scikit-learn's NMF: only the processes that model topics

        fitted = topics.fit_topics(texts, options.k, seed=options.seed)
        partial["topics"] = fitted["topics"]
        partial["assignments"] = fitted["assignments"] if options.with_rows else None
    if options.wants("keywords"):
        from workers import keywords

        partial["keywords"] = keywords.extract_keywords(texts, options.top_n)
    return partial


def merge_chunks(options: ContentOptions, partials: list[dict[str, Any]]) -> dict[str, Any]:
    """The task's result from its partials (chunks in input order, plus the whole-set one).

    ``{"posts": [{"id", compound, pos, neu, neg, label, "topic", "entities"}] (unless detail
    is summary), "summary": {"count", "mean_compound", "labels"}, "sentiment": {"histogram",
    "by_day", "by_hour"}, "topics", "hashtags", "entities", "keywords"}``, each section only
    when its analysis type was asked for.
    """
    chunks = [p for p in partials if p["kind"] == "posts"]
    whole: dict[str, Any] = next((p for p in partials if p["kind"] == "whole_set"), {})
    count = sum(p["count"] for p in chunks)
    result: dict[str, Any] = {}
    if options.with_rows and options.rows_as_json:
        arrays = [chunk["rows"][1:-1] for chunk in chunks if len(chunk["rows"]) > 2]
        result["posts"] = orjson.Fragment(b"[" + b",".join(arrays) + b"]")
    elif options.with_rows:
        rows = [row for chunk in chunks for row in chunk["rows"]]
        assignments = whole.get("assignments")
        if assignments is not None:
            for row, topic in zip(rows, assignments, strict=True):
                row["topic"] = topic
        result["posts"] = rows
    summary: dict[str, Any] = {"count": count}
    if options.wants("sentiment"):
        merged = sentiment_summary.merge_sentiment_summaries(p["sentiment"] for p in chunks)
        final = sentiment_summary.finalize_sentiment(merged)
        summary["mean_compound"] = final["mean_compound"] if count else None
        summary["labels"] = final["labels"]
        result["sentiment"] = {key: final[key] for key in ("histogram", "by_day", "by_hour")}
    result["summary"] = summary
    if options.wants("topics"):
        result["topics"] = whole["topics"]
    if options.wants("entities"):
        counted = entity_counts.merge_entity_counts(p["entities"] for p in chunks)
        final_entities = entity_counts.finalize_entities(counted, options.top_n)
        result["hashtags"] = final_entities.pop("hashtags")
        result["entities"] = final_entities
    elif options.hashtags:
        counted = entity_counts.merge_entity_counts(
            entity_counts.EntityPartial(
                posts=0, mentions={}, hashtags=p["hashtags"], cashtags={}, domains={}, names={}
            )
            for p in chunks
        )
        result["hashtags"] = entity_counts.finalize_entities(counted, options.top_n)["hashtags"]
    if options.wants("keywords"):
        result["keywords"] = whole["keywords"]
    return result
