"""Entities of a post: mentions, hashtags, cashtags, URLs and names.

Names come from a capitalisation heuristic backed by a small shipped gazetteer
(`workers/data/gazetteer.tsv`): a gazetteer hit gives a canonical name and its kind
("GOP" and "Republicans" both count for "Republican Party"); other runs of capitalised words
are kept when they are not sentence-initial common words and typed by titles ("Sen."),
suffixes ("... County", "... Committee") or a leading given name. spaCy's English model is
not on PyPI from its authors and runs at ~1-2 % of this speed, so it is not used.

Their aggregate over many posts is in `workers.entity_counts`.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterable
from functools import lru_cache
from importlib import resources
from typing import TypedDict

from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

from workers.text import (
    CASHTAG_RE,
    HASHTAG_RE,
    MENTION_RE,
    URL_RE,
    clean_url,
)

# A run of capitalised words, optionally joined by the lower-case particles of names
# ("Department of Justice", "Beto O'Rourke"). Not inside handles, tags, paths or URLs.
_RUN_RE = re.compile(
    r"(?<![\w@#$/.:])[A-Z][\w'\u2019.&-]*"
    r"(?:[ ](?:(?:of|the|de|del|da|van|von|for|and|&)[ ])?[A-Z][\w'\u2019.&-]*)*"
)
_WORD_RE = re.compile(r"[A-Za-z][\w'\u2019-]*")
_CAPITALISED_RE = re.compile(r"(?<![\w'\u2019-])[A-Z]")
_LETTER_RE = re.compile(r"[A-Za-z]")
_UPPER_RE = re.compile(r"[A-Z]")
# Dots that do not end a sentence: initials ("J.", "U.S.") and common abbreviations.
_ABBREVIATION_RE = re.compile(
    r"^(?:[A-Z]\.)+$|^(?:Dr|Mr|Mrs|Ms|St|Jr|Sr|Mt|Ft|Sen|Rep|Gov|Gen|Rev|Inc|Co|Corp|Lt|Col)\.$"
)
_CONNECTORS = frozenset({"of", "the", "de", "del", "da", "van", "von", "for", "and", "&"})
_SENTENCE_BREAKS = frozenset('.!?:;"\u201c\u201d()[]*>\n|-\u2013\u2014')
_APOSTROPHE_RE = re.compile("['\u2019]")
_MAX_ALIAS_TOKENS = 5


class PostEntities(TypedDict):
    mentions: list[str]
    hashtags: list[str]
    cashtags: list[str]
    urls: list[str]
    names: list[dict[str, str]]  # {"text", "kind"}


class Gazetteer(TypedDict):
    aliases: dict[str, tuple[str, str]]  # surface form -> (canonical name, kind)
    first_names: frozenset[str]
    titles: frozenset[str]  # "Sen.", "Governor": what follows is a person
    org_suffixes: frozenset[str]  # "... Committee"
    place_suffixes: frozenset[str]  # "... County"
    common: frozenset[str]  # lower-case words that are not names even when capitalised


@lru_cache(maxsize=1)
def gazetteer() -> Gazetteer:
    """The shipped gazetteer, read once per process."""
    data = resources.files("workers") / "data"
    aliases: dict[str, tuple[str, str]] = {}
    for line in (data / "gazetteer.tsv").read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        canonical, kind, *rest = line.split("\t")
        for surface in [canonical, *(rest[0].split("|") if rest and rest[0] else [])]:
            aliases[surface] = (canonical, kind)
    names = (data / "first_names.txt").read_text(encoding="utf-8").split()
    sections: dict[str, set[str]] = {}
    current: set[str] = set()
    for line in (data / "name_words.txt").read_text(encoding="utf-8").splitlines():
        if line.startswith("["):
            current = sections.setdefault(line.strip("[] "), set())
        elif not line.startswith("#"):
            current.update(line.split())
    return Gazetteer(
        aliases=aliases,
        first_names=frozenset(names),
        titles=frozenset(sections["titles"]),
        org_suffixes=frozenset(sections["org_suffixes"]),
        place_suffixes=frozenset(sections["place_suffixes"]),
        common=frozenset(sections["common"]) | ENGLISH_STOP_WORDS,
    )


def init() -> None:
    """Pool initializer hook: read the gazetteer before the first task."""
    gazetteer()


def extract_entities(text: str) -> PostEntities:
    """Entities of one post, each list without repeats, in order of first appearance.

    ``{"mentions": ["@bob", "@ann@mastodon.social", "@cat.bsky.social"],
    "hashtags": ["#Election2022"], "cashtags": ["$TSLA"], "urls": ["https://..."],
    "names": [{"text": "Joe Biden", "kind": "person"}]}``. Mentions are lower case (handles
    are case-insensitive); hashtags keep the author's spelling (aggregation folds case);
    cashtags are upper case; kinds are person, org, place, group or other.
    """
    if not text:
        return PostEntities(mentions=[], hashtags=[], cashtags=[], urls=[], names=[])
    if "&" in text:
        text = html.unescape(text)  # tweets and Reddit bodies arrive HTML-escaped
    urls = _unique(clean_url(m.group(0)) for m in URL_RE.finditer(text)) if "." in text else []
    prose = URL_RE.sub(" ", text) if urls else text
    mentions: list[str] = []
    if "@" in prose:
        mentions = _unique(
            "@" + (m.group(1) + (m.group(2) or "")).lower() for m in MENTION_RE.finditer(prose)
        )
    hashtags: list[str] = []
    if "#" in prose:
        seen: set[str] = set()
        for m in HASHTAG_RE.finditer(prose):
            if (key := m.group(1).casefold()) not in seen:
                seen.add(key)
                hashtags.append("#" + m.group(1))
    cashtags: list[str] = []
    if "$" in prose:
        cashtags = _unique("$" + m.group(1).upper() for m in CASHTAG_RE.finditer(prose))
    return PostEntities(
        mentions=mentions,
        hashtags=hashtags,
        cashtags=cashtags,
        urls=urls,
        names=extract_names(prose),
    )


def extract_names(text: str) -> list[dict[str, str]]:
    """Named people, organisations, places and groups in `text` (see the module doc)."""
    gaz = gazetteer()
    found: dict[str, str] = {}
    shouting: list[bool] = []  # computed once, and only if an ALL-CAPS alias is met

    def is_shouting() -> bool:
        if not shouting:
            shouting.append(_is_shouting(text))
        return shouting[0]

    for line in text.splitlines() if "\n" in text else (text,):
        headline: bool | None = None
        for match in _RUN_RE.finditer(line):
            if headline is None:
                # In Title Case Headlines capitals say nothing: only gazetteer names count.
                words = len(_WORD_RE.findall(line))
                headline = words >= 4 and len(_CAPITALISED_RE.findall(line)) >= 0.6 * words
            initial = match.start() == 0 or _after_break(line, match.start())
            for tokens, starts_sentence in _sentences(match.group(0).split(" "), initial):
                _names_in_run(tokens, starts_sentence, headline, gaz, is_shouting, found)
    return [{"text": name, "kind": kind} for name, kind in found.items()]


def _after_break(text: str, start: int) -> bool:
    k = start - 1
    while k >= 0 and text[k] in " \t":
        k -= 1
    return k < 0 or text[k] in _SENTENCE_BREAKS


def _is_shouting(text: str) -> bool:
    # In ALL-CAPS posts acronym look-ups ("US", "WHO", "PA") are mostly ordinary words.
    letters = len(_LETTER_RE.findall(text))
    return letters >= 12 and len(_UPPER_RE.findall(text)) > 0.6 * letters


def _sentences(tokens: list[str], initial: bool) -> Iterable[tuple[list[str], bool]]:
    """Split a capitalised run at sentence ends ("Trump. Biden said") and tidy tokens."""
    current: list[str] = []
    for raw in tokens:
        token = raw[:-2] if raw.endswith(("'s", "\u2019s")) else raw
        ends_sentence = token.endswith(".") and not _ABBREVIATION_RE.match(token)
        if ends_sentence or token.endswith((",", "!", "?", ":", ";")):
            token = token.rstrip(".,!?:;")
        if token:
            current.append(token)
        if ends_sentence or raw.endswith((",", "!", "?", ":", ";")):
            if current:
                yield current, initial
            current, initial = [], not raw.endswith(",")
    if current:
        yield current, initial


def _names_in_run(
    tokens: list[str],
    initial: bool,
    gazetteer_only: bool,
    gaz: Gazetteer,
    shouting: Callable[[], bool],
    found: dict[str, str],
) -> None:
    aliases = gaz["aliases"]
    unknown: list[str] = []
    unknown_initial = initial
    p = 0
    while p < len(tokens):
        for length in range(min(_MAX_ALIAS_TOKENS, len(tokens) - p), 0, -1):
            surface = " ".join(tokens[p : p + length])
            hit = aliases.get(surface)
            if hit is not None and not (surface.isupper() and shouting()):
                _flush(unknown, unknown_initial, gaz, found)
                found.setdefault(hit[0], hit[1])
                unknown, unknown_initial = [], False
                p += length
                break
        else:
            token = tokens[p]
            base = _APOSTROPHE_RE.split(token, 1)[0]
            if base.lower() in gaz["common"] or (token.isupper() and len(token) > 1):
                # Function words, interjections ("Vote", "I'm") and ALL-CAPS emphasis end a
                # candidate; a lone word after them is as doubtful as a sentence-initial one.
                _flush(unknown, unknown_initial, gaz, found)
                unknown, unknown_initial = [], True
            elif not gazetteer_only:
                unknown.append(token)
            p += 1
    _flush(unknown, unknown_initial, gaz, found)


def _flush(tokens: list[str], initial: bool, gaz: Gazetteer, found: dict[str, str]) -> None:
    while tokens and tokens[-1] in _CONNECTORS:
        tokens = tokens[:-1]
    while tokens and tokens[0] in _CONNECTORS:
        tokens, initial = tokens[1:], False
    titled = False
    while tokens and tokens[0] in gaz["titles"]:
        tokens, titled, initial = tokens[1:], True, False
    if not tokens or (len(tokens) == 1 and (initial or len(tokens[0]) < 3) and not titled):
        return
    name = " ".join(tokens)
    if titled or (1 < len(tokens) <= 3 and tokens[0] in gaz["first_names"]):
        kind = "person"
    elif tokens[-1] in gaz["org_suffixes"]:
        kind = "org"
    elif tokens[-1] in gaz["place_suffixes"]:
        kind = "place"
    else:
        kind = "other"
    found.setdefault(name, kind)


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))
