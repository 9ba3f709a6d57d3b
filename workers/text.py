"""Patterns shared by the per-post analysers: URLs, handles, hashtags and cashtags.

Compiled once at import; every function here is cheap enough to run per post.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from importlib import resources

from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

# A URL ends at whitespace, quotes or angle brackets; one balanced "(...)" group is kept
# (Wikipedia links) and trailing sentence punctuation is trimmed by `clean_url`.
URL_RE = re.compile(
    r"(?<![\w@])(?:https?://|www\.)[^\s<>\"'()\[\]]+(?:\([^\s<>\"'()]*\)[^\s<>\"'()\[\]]*)*",
    re.IGNORECASE,
)
_URL_TRAILING = ".,;:!?*_~"

# One pattern for Twitter/X `@user`, Mastodon `@user@instance.tld` and Bluesky `@name.tld`.
# The look-behind keeps e-mail addresses (`a@b.org`) and `u/@x` paths out; a handle never
# ends on "." or "-" so "thanks @bob." gives "bob".
MENTION_RE = re.compile(
    r"(?<![\w@./])@([A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?)"
    r"(@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+)?"
)

# Reddit's user references: "u/name" or "/u/name" (3-20 letters, digits, "_" or "-").
REDDIT_USER_RE = re.compile(r"(?<![\w/])/?u/([A-Za-z0-9_-]{3,20})\b")

# A hashtag needs at least one letter (so "#1" and "#2022" are not tags); the look-behind
# keeps URL fragments and HTML entities ("&#39;", "&amp;#x200B;") out.
HASHTAG_RE = re.compile(r"(?<![\w&#/;])#(\w*[^\W\d_]\w*)")

# Twitter's cashtag shape: 1-6 letters, optional ".X" class suffix; "$5" and "$5B" are prices.
CASHTAG_RE = re.compile(r"(?<![\w$])\$([A-Za-z]{1,6}(?:\.[A-Za-z]{1,2})?)(?!\w)")


def clean_url(raw: str) -> str:
    """Drop sentence punctuation glued to the end of a URL ("see http://x.org/a.")."""
    url = raw.rstrip(_URL_TRAILING)
    # An unbalanced closing parenthesis belongs to the prose, not to the URL.
    while url.endswith(")") and url.count("(") < url.count(")"):
        url = url[:-1].rstrip(_URL_TRAILING)
    return url


def normalize_handle(handle: str) -> str:
    """Canonical key of an account handle: no leading "@", lower case.

    Handles are case-insensitive on Twitter/X, Mastodon and Bluesky, so "@Bob" and "bob"
    are the same account.
    """
    return handle.strip().lstrip("@").lower()


def url_domain(url: str) -> str:
    """Host of a URL without "www." (for aggregating links by site)."""
    rest = url.split("://", 1)[1] if "://" in url else url
    host = rest.split("/", 1)[0].split("?", 1)[0].split("#", 1)[0].lower()
    host = host.rsplit("@", 1)[-1].split(":", 1)[0]
    return host[4:] if host.startswith("www.") else host


def post_hour(created: object) -> str | None:
    """UTC hour ("YYYY-MM-DDTHH") of a post's timestamp: epoch seconds, an ISO 8601 string
    or a datetime (naive ones are taken as UTC).

    None when the value is missing or unreadable, so undated posts simply drop out of time
    series instead of failing the task.
    """
    moment: datetime | None = None
    if isinstance(created, bool) or created is None:
        return None
    if isinstance(created, int | float):
        if not math.isfinite(created):
            return None
        try:
            moment = datetime.fromtimestamp(created, tz=UTC)
        except (OverflowError, OSError, ValueError):
            return None
    elif isinstance(created, datetime):
        moment = created if created.tzinfo is None else created.astimezone(UTC)
    elif isinstance(created, str):
        value = created.strip()
        if value.isdigit():
            return post_hour(int(value))
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return post_hour(moment)
    return moment.strftime("%Y-%m-%dT%H") if moment is not None else None


def post_day(created: object) -> str | None:
    """UTC day ("YYYY-MM-DD") of a post's timestamp; see `post_hour`."""
    hour = post_hour(created)
    return hour[:10] if hour is not None else None


def _load_stop_words() -> frozenset[str]:
    text = (resources.files("workers") / "data" / "stop_words.txt").read_text(encoding="utf-8")
    extra = (
        word for line in text.splitlines() if not line.startswith("#") for word in line.split()
    )
    return frozenset(extra) | ENGLISH_STOP_WORDS


# scikit-learn's English stop words plus social-media noise (workers/data/stop_words.txt).
STOP_WORDS = _load_stop_words()
_ENTITY_RE = re.compile(r"&(?:#x?[0-9a-f]+|[a-z]+);", re.IGNORECASE)
_REDDIT_REF_RE = re.compile(r"\b[ur]/\w+")


def text_for_terms(text: str) -> str:
    """The prose of a post for term statistics: URLs, handles, HTML entities and Reddit
    u/ and r/ references removed; "#Tag" becomes the word "Tag"."""
    # Each pattern runs only when its marker is present: most posts have none of them.
    if "://" in text or "www." in text:
        text = URL_RE.sub(" ", text)
    if "@" in text:
        text = MENTION_RE.sub(" ", text)
    if "&" in text:
        text = _ENTITY_RE.sub(" ", text)
    if "/" in text:
        text = _REDDIT_REF_RE.sub(" ", text)
    return text.replace("#", " ")


def even_sample(items: list[str], limit: int) -> list[str]:
    """At most `limit` items spread evenly over `items` (deterministic, keeps order)."""
    if len(items) <= limit:
        return items
    step = len(items) / limit
    return [items[int(i * step)] for i in range(limit)]
