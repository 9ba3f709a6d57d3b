"""Key phrases of a whole set of posts, with scikit-learn only (no new dependency).

Candidates are the 1- to 3-word n-grams inside stop-word-free stretches of text (the RAKE
idea: "vote blue no matter who" yields "vote blue" and "matter", never the false bigram
"blue matter"). Each candidate is scored by its mean TF-IDF over the posts (sublinear term
frequency, rows normalised to unit length), which favours phrases used by many posts but
not by nearly all of them. A phrase is dropped when a better-ranked longer phrase contains
it and accounts for most of its uses ("wave" under "red wave"). YAKE (LGPLv3) was not
needed: this stays deterministic, offline and fast. Sets over `SAMPLE` posts are scored on
an evenly spaced sample of that size.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer

from workers.text import STOP_WORDS, even_sample, text_for_terms

SAMPLE = 50_000
MAX_NGRAM = 3
# Words (letters first, then letters/digits, an optional 's) or anything that breaks a phrase.
_TOKEN_RE = re.compile(r"[^\W\d_][^\W_]*(?:['\u2019][^\W\d_]+)?|[^\w\s]|\n")
# A contained phrase is redundant when the longer phrase covers this share of its posts.
_SHARE = 0.75


def candidate_phrases(text: str) -> list[str]:
    """The 1..3-word n-grams of `text` that neither cross punctuation nor stop words."""
    grams: list[str] = []
    for run in _runs(text_for_terms(text).lower()):
        for n in range(1, min(MAX_NGRAM, len(run)) + 1):
            grams.extend(" ".join(run[i : i + n]) for i in range(len(run) - n + 1))
    return grams


def _runs(text: str) -> Iterator[list[str]]:
    run: list[str] = []
    for token in _TOKEN_RE.findall(text):
        word = token.split("'")[0].split("\u2019")[0]
        if len(word) > 1 and word[0].isalpha() and word not in STOP_WORDS:
            run.append(word)
        elif run:
            yield run
            run = []
    if run:
        yield run


def extract_keywords(texts: list[str], top_n: int = 20) -> list[dict[str, object]]:
    """The `top_n` key phrases of `texts`, best first: ``[{"phrase", "score", "posts"}]``.

    `score` is relative to the best phrase (1.0); `posts` is how many of the scored posts
    use the phrase. An empty list when no text has a content word.
    """
    if top_n < 1:
        raise ValueError(f"top_n: must be a positive integer, got {top_n}")
    sample = even_sample(texts, SAMPLE)
    sample = [t for t in sample if t and t.strip()]
    if not sample:
        return []
    vectorizer = TfidfVectorizer(
        analyzer=candidate_phrases,
        min_df=2 if len(sample) >= 20 else 1,
        max_df=0.9 if len(sample) >= 20 else 1.0,
        sublinear_tf=True,
    )
    try:
        matrix = vectorizer.fit_transform(sample)
    except ValueError:  # no candidate phrase at all
        return []
    phrases = [str(p) for p in vectorizer.get_feature_names_out()]
    scores = np.asarray(matrix.mean(axis=0)).ravel()
    posts = [int(n) for n in np.diff(matrix.tocsc().indptr)]
    order = np.lexsort((np.array(phrases), -scores))  # best score first, ties alphabetical
    chosen: list[int] = []
    for index in order[: top_n * 20]:
        _choose(int(index), chosen, phrases, posts)
        if len(chosen) == top_n:
            break
    chosen.sort(key=lambda i: (-scores[i], phrases[i]))
    best = float(scores[chosen[0]]) if chosen else 1.0
    return [
        {"phrase": phrases[i], "score": round(float(scores[i]) / best, 4), "posts": posts[i]}
        for i in chosen
    ]


def _choose(index: int, chosen: list[int], phrases: list[str], posts: list[int]) -> None:
    """Add `phrases[index]` unless a chosen phrase says the same; a longer phrase that
    accounts for most uses of a chosen shorter one takes its place ("wave" -> "red wave")."""
    phrase, uses = f" {phrases[index]} ", posts[index]
    for slot, other in enumerate(chosen):
        text = f" {phrases[other]} "
        if len(text) > len(phrase) and phrase in text and posts[other] >= _SHARE * uses:
            return  # a chosen longer phrase covers this one
        if len(text) < len(phrase) and text in phrase and uses >= _SHARE * posts[other]:
            chosen[slot] = index
            return
    chosen.append(index)
