"""Direct, single-process throughput of the analysis functions (no server, no pool).

The per-post steps run over N posts (default 200,000: the Reddit comment bodies and
submission titles of shared/data, cycled); the whole-set steps run once over the same posts;
the relationship step runs over the 10,355 Reddit comments. The server benchmark pairs its
own figures with `run()`'s rows, so keep their names stable.

    python bench/bench_analysis_direct.py [--posts 200000] [--json out.json]
"""

from __future__ import annotations

import argparse
import gzip
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from workers import (
    entities,
    keywords,
    relationships,
    reports,
    sentiment,
    sentiment_summary,
    topics,
)

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def load_reddit() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    def read(name: str) -> list[dict[str, Any]]:
        with gzip.open(DATA / name, "rt", encoding="utf-8") as f:
            return [json.loads(line) for line in f]

    return read("reddit_comment_2022-11-08.json.gz"), read("reddit_submission_2022-11-08.json.gz")


def corpus(n: int, comments: list[dict[str, Any]], submissions: list[dict[str, Any]]) -> list[str]:
    """`n` post texts: comment bodies and submission titles, cycled."""
    base = [c["body"] for c in comments] + [s["title"] for s in submissions]
    return [base[i % len(base)] for i in range(n)]


def _timed(name: str, items: int, call: Callable[[], object]) -> dict[str, Any]:
    start = time.perf_counter()
    call()
    seconds = time.perf_counter() - start
    return {
        "step": name,
        "items": items,
        "seconds": round(seconds, 3),
        "per_s": round(items / seconds),
    }


def run(n_posts: int = 200_000) -> list[dict[str, Any]]:
    comments, submissions = load_reddit()
    texts = corpus(n_posts, comments, submissions)
    for module in (sentiment, entities, reports):
        module.init()
    release = SentimentIntensityAnalyzer()
    sample = texts[:20_000]
    both = comments + submissions

    def per_post() -> None:
        for text in texts:
            sentiment.score(text)
            entities.extract_entities(text)

    graph, vader, extract = (
        relationships.analyze_relationships,
        release.polarity_scores,
        entities.extract_entities,
    )
    rows = [
        _timed("vader_release_3.3.2 (20k)", len(sample), lambda: [*map(vader, sample)]),
        _timed("sentiment.score", n_posts, lambda: sentiment.score_many(texts)),
        _timed("entities.extract_entities", n_posts, lambda: [*map(extract, texts)]),
        _timed("per_post (score + entities)", n_posts, per_post),
        _timed("topics.fit_topics", n_posts, lambda: topics.fit_topics(texts)),
        _timed("keywords.extract_keywords", n_posts, lambda: keywords.extract_keywords(texts)),
        _timed("relationships (comments)", len(comments), lambda: graph(comments)),
        _timed("relationships (comments+submissions)", len(both), lambda: graph(both)),
    ]  # fmt: skip
    scores = sentiment.score_many(texts[:12_258])
    created = [p["created_utc"] for p in both]
    data = {
        "sentiment": sentiment_summary.finalize_sentiment(
            sentiment_summary.summarize_sentiment(scores, created)
        ),
        "relationships": relationships.analyze_relationships(comments),
    }
    rows.append(
        _timed("reports.render_report html", 1, lambda: reports.render_report(data, "html"))
    )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=200_000)
    parser.add_argument("--json", type=Path, help="also write the rows as JSON here")
    args = parser.parse_args()
    rows = run(args.posts)
    print(f"{'step':40} {'items':>9} {'seconds':>9} {'items/s':>10}")
    for row in rows:
        print(f"{row['step']:40} {row['items']:>9,} {row['seconds']:>9.2f} {row['per_s']:>10,}")
    score = next(r for r in rows if r["step"] == "sentiment.score")
    release = rows[0]
    print(f"\nsentiment.score vs release VADER: {score['per_s'] / release['per_s']:.2f}x")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
