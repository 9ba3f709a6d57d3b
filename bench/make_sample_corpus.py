"""Build ``workers/data/sample_posts.jsonl.gz``, the demo corpus of the ``sample`` platform.

Run from the project root (needs ``../shared/data``)::

    python bench/make_sample_corpus.py [--shared ../shared/data] [--posts 3000]

The selection is deterministic and favours conversation, so that reply networks and threads
are non-trivial: first the submissions that comments in the dump answer, with those comments;
then comment-to-comment reply pairs; then comments from political subreddits, oldest first,
until ``--posts``. Deleted or removed texts and bot accounts are left out. Posts are stored
already normalised (no ``raw``), one JSON object a line, gzip without a timestamp so that
rebuilding gives the same bytes.
"""

from __future__ import annotations

import argparse
import gzip
import io
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from workers.collection.reddit import normalise_thing  # noqa: E402

SOURCES = ("reddit_submission_2022-11-08.json.gz", "reddit_comment_2022-11-08.json.gz")
BOTS = {"AutoModerator", "newswall-org", "MultiSourceNews_Bot", "AutoNewspaperAdmin"}
POLITICAL = {
    "politics", "Conservative", "PoliticalHumor", "moderatepolitics", "VoteDEM", "neoliberal",
    "AskALiberal", "news", "Pennsylvania", "texas", "Republican", "democrats",
    "PoliticalDiscussion",
}  # fmt: skip
GONE = {"[deleted]", "[removed]", ""}


def read(path: Path) -> Iterator[dict[str, Any]]:
    with gzip.open(path, "rb") as lines:
        for line in lines:
            yield orjson.loads(line)


def usable(thing: dict[str, Any]) -> bool:
    text = thing.get("body", thing.get("title", ""))
    return thing.get("author") not in BOTS | GONE and text.strip() not in GONE


def select(
    submissions: list[dict[str, Any]], comments: list[dict[str, Any]], size: int
) -> list[dict[str, Any]]:
    submissions = [s for s in submissions if usable(s)]
    comments = [c for c in comments if usable(c)]
    by_id = {c["id"]: c for c in comments}
    submission_ids = {s["id"] for s in submissions}
    chosen: dict[str, dict[str, Any]] = {}

    def take(thing: dict[str, Any], kind: str) -> None:
        if len(chosen) < size:
            chosen.setdefault(f"{kind}_{thing['id']}", thing)

    answered = {c["link_id"][3:] for c in comments if c["link_id"][3:] in submission_ids}
    for submission in sorted(submissions, key=lambda s: s["created_utc"]):
        if submission["id"] in answered:
            take(submission, "t3")
            for comment in comments:
                if comment["link_id"][3:] == submission["id"]:
                    take(comment, "t1")
    for comment in comments:
        parent = by_id.get(comment["parent_id"][3:]) if comment["parent_id"][:3] == "t1_" else None
        if parent is not None:
            take(parent, "t1")
            take(comment, "t1")
    for comment in sorted(comments, key=lambda c: c["created_utc"]):
        if comment["subreddit"] in POLITICAL:
            take(comment, "t1")
    return list(chosen.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--posts", type=int, default=3000)
    parser.add_argument(
        "--out", type=Path, default=ROOT / "workers" / "data" / "sample_posts.jsonl.gz"
    )
    args = parser.parse_args()

    submissions = list(read(args.shared / SOURCES[0]))
    comments = list(read(args.shared / SOURCES[1]))
    posts = [
        normalise_thing(thing, include_raw=False, unescape=True)
        for thing in select(submissions, comments, args.posts)
    ]
    posts.sort(key=lambda p: (p["created_at"], p["id"]))
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0, compresslevel=9) as out:
        for post in posts:
            out.write(orjson.dumps(post) + b"\n")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(buffer.getvalue())
    replies = sum(1 for p in posts if p["reply_to"])
    inside = {p["content_id"] for p in posts}
    linked = sum(1 for p in posts if p["reply_to"] and p["reply_to"]["post"] in inside)
    print(
        f"{args.out.relative_to(ROOT)}: {len(posts)} posts "
        f"({sum(p['id'].startswith('t3_') for p in posts)} submissions), "
        f"{len({p['author']['handle'] for p in posts})} authors, {replies} replies "
        f"({linked} to a post in the sample), {len(buffer.getvalue()) / 1024:.0f} KiB"
    )


if __name__ == "__main__":
    main()
