"""Function-level tests of the analysis workers (sentiment, entities, topics, keywords,
relationships, reports), on crafted inputs and on the real Reddit comments of shared/."""

from __future__ import annotations

import gzip
import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import networkx as nx
import pytest

from workers import (
    entities,
    entity_counts,
    keywords,
    relationships,
    reports,
    sentiment,
    sentiment_summary,
    topics,
)
from workers.text import post_day, post_hour

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
COMMENTS = DATA / "reddit_comment_2022-11-08.json.gz"
needs_data = pytest.mark.skipif(not COMMENTS.exists(), reason="shared data not present")


@pytest.fixture(scope="module")
def comments() -> list[dict[str, Any]]:
    with gzip.open(COMMENTS, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


# --- sentiment --------------------------------------------------------------------------


def test_score_shape_and_labels() -> None:
    assert sentiment.score("VADER is smart, handsome, and funny!") == {
        "compound": 0.8439,
        "pos": 0.752,
        "neu": 0.248,
        "neg": 0.0,
        "label": "positive",
    }
    assert sentiment.score("This is a terrible, awful day.")["label"] == "negative"
    assert sentiment.score("The meeting is at noon.")["label"] == "neutral"
    assert sentiment.score("") == {
        "compound": 0.0,
        "pos": 0.0,
        "neu": 0.0,
        "neg": 0.0,
        "label": "neutral",
    }
    assert [sentiment.label_for(x) for x in (0.05, 0.0499, -0.0499, -0.05)] == [
        "positive",
        "neutral",
        "neutral",
        "negative",
    ]


def test_social_media_fixes() -> None:
    # A handle that happens to be a word no longer scores; a URL's "?" is not emphasis.
    assert sentiment.polarity_scores("@joy see you")["compound"] == 0.0
    assert sentiment.polarity_scores("@joy see you", sentiment.NO_FIXES)["compound"] > 0
    # An emoji with a variation selector scores like the bare emoji.
    assert sentiment.score("I ❤️ this") == sentiment.score("I ❤ this")
    assert sentiment.score("sooooo goooood")["compound"] == sentiment.score("so good")["compound"]
    assert sentiment.score("ok!")["compound"] > 0  # the release keeps "ok!" and finds nothing
    # "no" is a negative word as in 2014, not a negator of the next three words.
    assert sentiment.polarity_scores("no good", sentiment.NO_FIXES)["compound"] < 0
    assert (
        sentiment.polarity_scores("No worries, thank you")["compound"]
        < (sentiment.polarity_scores("No worries, thank you", sentiment.NO_FIXES)["compound"])
    )
    assert sentiment.score("great &amp; fun") == sentiment.score("great & fun")


def test_sentiment_summary_chunks_merge_to_one_pass() -> None:
    texts = ["great day", "awful", "ok", "meh", "love it!!", "hate", "", "the plan"] * 5
    created = [1667900000 + 3600 * i for i in range(len(texts))]
    created[3] = None  # an undated post counts but has no period
    rows = sentiment.score_many(texts)
    whole = sentiment_summary.summarize_sentiment(rows, created)
    parts = [
        sentiment_summary.summarize_sentiment(rows[i : i + 7], created[i : i + 7])
        for i in range(0, 40, 7)
    ]
    merged = sentiment_summary.merge_sentiment_summaries(parts)
    assert merged["count"] == whole["count"] == 40
    assert merged["labels"] == whole["labels"]
    assert merged["histogram"] == whole["histogram"]
    assert merged["by_hour"] == whole["by_hour"] and merged["by_day"] == whole["by_day"]
    assert merged["compound_sum"] == pytest.approx(whole["compound_sum"])
    final = sentiment_summary.finalize_sentiment(merged)
    assert sum(final["histogram"]["counts"]) == 40 and len(final["histogram"]["edges"]) == 21
    assert sum(d["count"] for d in final["by_hour"]) == 39
    assert [d["period"] for d in final["by_day"]] == ["2022-11-08", "2022-11-09", "2022-11-10"]
    assert final["mean_compound"] == round(sum(float(r["compound"]) for r in rows) / 40, 4)


def test_post_time_parsing() -> None:
    assert post_hour(1667900000) == "2022-11-08T09"
    assert post_hour("2022-11-08T23:59:59Z") == "2022-11-08T23"
    assert post_hour("2022-11-08T23:30:00-02:00") == "2022-11-09T01"
    assert post_day("1667900000") == "2022-11-08"
    assert [post_hour(v) for v in (None, "soon", float("nan"), True, [])] == [None] * 5


# --- entities ---------------------------------------------------------------------------


def test_extract_entities_whole_result() -> None:
    text = (
        "Thanks @Bob, @alice@mastodon.social and @carol.bsky.social! Mail a@b.org. "
        "#Election2022 #2022 &#39;#1 $TSLA up, $5 down. "
        "See https://en.wikipedia.org/wiki/Foo_(bar). "
        "Sen. Ted Cruz met John Smith at the Department of Justice in Maricopa County. GOP wins."
    )
    assert entities.extract_entities(text) == {
        "mentions": ["@bob", "@alice@mastodon.social", "@carol.bsky.social"],
        "hashtags": ["#Election2022"],
        "cashtags": ["$TSLA"],
        "urls": ["https://en.wikipedia.org/wiki/Foo_(bar)"],
        "names": [
            {"text": "Ted Cruz", "kind": "person"},
            {"text": "John Smith", "kind": "person"},
            {"text": "Department of Justice", "kind": "org"},
            {"text": "Maricopa County", "kind": "place"},
            {"text": "Republican Party", "kind": "org"},
        ],
    }


def test_names_skip_sentence_starts_headlines_and_shouting() -> None:
    names = entities.extract_names
    assert names("Yesterday I voted. Tomorrow we count.") == []
    assert names("VOTE THEM OUT, WHO CARES ABOUT US") == []
    # Title Case headlines only yield gazetteer names.
    assert names("Musk Shares A Nazi Meme And Then Tells Twitter To Vote Republican") == [
        {"text": "Elon Musk", "kind": "person"},
        {"text": "Nazis", "kind": "group"},
        {"text": "Twitter", "kind": "org"},
        {"text": "Republican Party", "kind": "org"},
    ]
    assert names("I think Biden. Trump said so") == [
        {"text": "Joe Biden", "kind": "person"},
        {"text": "Donald Trump", "kind": "person"},
    ]


@needs_data
def test_entity_counts_merge_like_one_pass(comments) -> None:
    # Given per-post entities of real comments, when counted in chunks and merged,
    # then the result equals counting them in one pass.
    rows = [entities.extract_entities(c["body"]) for c in comments[:4000]]
    whole = entity_counts.count_entities(rows)
    merged = entity_counts.merge_entity_counts(
        entity_counts.count_entities(rows[i : i + 333]) for i in range(0, 4000, 333)
    )
    assert merged == whole
    final = entity_counts.finalize_entities(merged, top_n=10_000)
    assert final["posts"] == 4000
    assert [n["count"] for n in final["names"]] == sorted(
        (n["count"] for n in final["names"]), reverse=True
    )
    # Independent count of the top hashtag: posts using it in any case, shown as its most
    # used spelling.
    top = final["hashtags"][0]
    spellings = Counter(h for r in rows for h in r["hashtags"] if h.lower() == top["text"].lower())
    shown = min(spellings, key=lambda h: (-spellings[h], h))
    assert top == {"text": shown, "count": sum(spellings.values())}
    assert top["count"] >= 2


def test_hashtag_display_is_the_most_used_spelling() -> None:
    texts = ["#VoteBlue now", "#voteblue", "#VoteBlue again", "#VOTEBLUE", "#RedWave #redwave"]
    assert entity_counts.hashtag_counts(texts) == [
        {"text": "#VoteBlue", "count": 4},
        {"text": "#RedWave", "count": 1},
    ]


# --- topics -----------------------------------------------------------------------------

THEMES = {
    "food": "pizza cheese tomato oven crust pasta",
    "sport": "football goal match striker referee league",
    "vote": "ballot election polling voters count precinct",
}


def _themed_texts() -> tuple[list[str], list[str]]:
    texts, themes = [], []
    for i in range(90):
        theme = list(THEMES)[i % 3]
        words = THEMES[theme].split()
        texts.append(f"{words[i % 6]} and {words[(i + 1) % 6]} with {words[(i + 3) % 6]} today")
        themes.append(theme)
    return texts, themes


def test_topics_recover_clear_themes() -> None:
    texts, themes = _themed_texts()
    result = topics.fit_topics(texts, k=3)
    assert [t["id"] for t in result["topics"]] == [0, 1, 2]
    assert sorted(t["size"] for t in result["topics"]) == [30, 30, 30]
    for topic in result["topics"]:
        theme = {w for t in result["topics"] if t is topic for w in t["terms"][:3]}
        assert any(theme <= set(words.split()) for words in THEMES.values()), topic
    # Every text of a theme lands in the same topic, and different themes in different ones.
    by_theme = {
        theme: {a for a, t in zip(result["assignments"], themes, strict=True) if t == theme}
        for theme in THEMES
    }
    assert all(len(ids) == 1 for ids in by_theme.values())
    assert len({next(iter(ids)) for ids in by_theme.values()}) == 3
    assert topics.fit_topics(texts, k=3) == result  # deterministic


@pytest.mark.parametrize(
    ("texts", "expected_topics"),
    [([], 0), ([""], 0), (["the and of"], 0), (["hello world"], 1), (["same words here"] * 7, 1)],
)
def test_topics_tiny_inputs(texts: list[str], expected_topics: int) -> None:
    result = topics.fit_topics(texts)
    assert len(result["topics"]) == expected_topics
    assert len(result["assignments"]) == len(texts)
    assert sum(t["size"] for t in result["topics"]) == sum(
        a is not None for a in result["assignments"]
    )


def test_topics_reject_bad_k() -> None:
    with pytest.raises(ValueError, match="k: must be a positive integer"):
        topics.fit_topics(["a b"], k=0)
    assert [topics.choose_k(n) for n in (10, 100, 1000, 100_000)] == [2, 2, 6, 12]


# --- keywords ---------------------------------------------------------------------------


def test_candidate_phrases_stop_at_stop_words_and_punctuation() -> None:
    text = "Vote BLUE no matter who! The red wave, https://x.com #RedWave"
    assert keywords.candidate_phrases(text) == [
        *("vote", "blue", "vote blue", "matter", "red", "wave", "red wave", "redwave"),
    ]


def test_keywords_prefer_the_phrase_that_explains_a_word() -> None:
    texts = (
        ["the red wave is coming"] * 8
        + ["a wave of voters", "ballot counting slow"]
        + ["count every ballot"] * 3
    )
    found = keywords.extract_keywords(texts, top_n=5)
    phrases = [k["phrase"] for k in found]
    assert "red wave" in phrases and "wave" not in phrases
    assert found[0]["score"] == 1.0 and all(0 < k["score"] <= 1 for k in found)
    assert {
        "phrase": "ballot",
        "score": found[phrases.index("ballot")]["score"],
        "posts": 4,
    } in found
    assert keywords.extract_keywords(["", "  "]) == []


# --- relationships ----------------------------------------------------------------------


def _independent_replies(comments: list[dict[str, Any]]) -> Counter[tuple[str, str]]:
    author = {c["id"]: c["author"] for c in comments}
    pairs: Counter[tuple[str, str]] = Counter()
    for c in comments:
        if c["parent_id"].startswith("t1_") and c["parent_id"][3:] in author:
            a, b = c["author"].lower(), author[c["parent_id"][3:]].lower()
            if a != b and "[deleted]" not in (a, b):
                pairs[(a, b)] += 1
    return pairs


@needs_data
def test_relationships_on_reddit_replies(comments) -> None:
    result = relationships.analyze_relationships(comments, max_graph_nodes=100_000, top_n=10)
    expected = _independent_replies(comments)
    summary = result["summary"]
    assert summary["posts"] == len(comments)
    assert summary["replies"] == sum(expected.values())
    graph = nx.node_link_graph(result["graph"], edges="links")
    assert not result["graph"]["graph"]["truncated"]
    assert (
        graph.number_of_nodes() == summary["nodes"] and graph.number_of_edges() == summary["edges"]
    )
    assert {(a, b): d["replies"] for a, b, d in graph.edges(data=True) if d["replies"]} == dict(
        expected
    )
    # The heaviest replier, counted independently, is among the most active actors.
    replies_by: Counter[str] = Counter()
    for (a, _), n in expected.items():
        replies_by[a] += n
    heaviest, replies = replies_by.most_common(1)[0]
    active = {a["key"]: a["interactions"] for a in result["central"]["most_active"]}
    assert active[heaviest] >= replies
    # Communities partition the nodes; listed sizes match the members carried by the nodes.
    community = nx.get_node_attributes(graph, "community")
    assert set(community) == set(graph.nodes)
    sizes = Counter(community.values())
    assert len(sizes) == result["communities"]["count"]
    assert [c["size"] for c in result["communities"]["items"]] == [
        sizes[c["id"]] for c in result["communities"]["items"]
    ]
    assert sorted(sizes.values(), reverse=True)[:10] == [
        c["size"] for c in result["communities"]["items"]
    ]


@needs_data
def test_relationships_graph_is_capped_by_pagerank(comments) -> None:
    result = relationships.analyze_relationships(comments, max_graph_nodes=40, top_n=40)
    data = result["graph"]
    assert data["graph"]["truncated"] and data["graph"]["total_nodes"] == result["summary"]["nodes"]
    kept = [n["id"] for n in data["nodes"]]
    assert kept == [a["key"] for a in result["central"]["pagerank"]]
    assert all(e["source"] in kept and e["target"] in kept for e in data["links"])


def test_relationships_normalised_and_mastodon_shapes() -> None:
    ann = {"id": "u1", "handle": "@Ann", "name": "Ann A"}
    mastodon = {
        "id": "4",
        "account": {"id": "9", "acct": "cat@mastodon.social"},
        "content": "x",
        "in_reply_to_account_id": "u1",
        "mentions": [{"acct": "bob"}],
        "tags": [{"name": "b"}, {"name": "a"}],
    }
    posts = [
        {"id": "1", "author": ann, "text": "hi @bob #a #b"},
        {
            "id": "2",
            "author": "bob",
            "text": "y",
            "reply_to": {"post": "1"},
            "hashtags": ["#A", "C"],
        },
        {"id": "3", "author": "ann", "text": "self", "reply_to": {"author": "ANN"}},
        mastodon,
        {"id": "5", "author": "[deleted]", "text": "gone"},
        {"id": "6", "author": "dan", "text": "to the void", "reply_to": {"post": "5"}},
    ]
    result = relationships.analyze_relationships(posts)
    links = {
        (e["source"], e["target"]): (e["replies"], e["mentions"]) for e in result["graph"]["links"]
    }
    assert links == {
        ("ann", "bob"): (0, 1),
        ("bob", "ann"): (1, 0),
        ("cat@mastodon.social", "ann"): (1, 0),
        ("cat@mastodon.social", "bob"): (0, 1),
    }
    assert result["summary"]["skipped"] == {
        "no_author": 1,
        "self": 1,
        "unresolved_replies": 0,
        "deleted_target": 1,
    }
    assert result["hashtags"]["top_pairs"] == [
        {"tags": ["a", "b"], "posts": 2},
        {"tags": ["a", "c"], "posts": 1},
    ]
    labels = {n["id"]: n["label"] for n in result["graph"]["nodes"]}
    assert labels["ann"] == "Ann A"


def test_relationships_reject_bad_input() -> None:
    with pytest.raises(ValueError, match=r"posts\[1\]: must be an object"):
        relationships.analyze_relationships([{"author": "a"}, "oops"])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="max_graph_nodes: must be a positive integer"):
        relationships.analyze_relationships([], max_graph_nodes=0)
    empty = relationships.analyze_relationships([])
    assert empty["summary"]["nodes"] == 0 and empty["graph"]["nodes"] == []


# --- reports ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def report_data(comments) -> dict[str, Any]:
    sample = comments[:1500]
    texts = [c["body"] for c in sample]
    rows = sentiment.score_many(texts)
    found = entity_counts.finalize_entities(
        entity_counts.count_entities(entities.extract_entities(t) for t in texts), 10
    )
    return {
        "title": "Midterms <test>",
        "source": "1,500 Reddit comments",
        "sentiment": sentiment_summary.finalize_sentiment(
            sentiment_summary.summarize_sentiment(rows, [c["created_utc"] for c in sample])
        ),
        "topics": topics.fit_topics(texts, k=4)["topics"],
        "hashtags": [{"text": "#<b>bold</b>", "count": 3}, *found["hashtags"]],
        "entities": found,
        "keywords": keywords.extract_keywords(texts, top_n=10),
        "relationships": relationships.analyze_relationships(comments[:3000], max_graph_nodes=200),
    }


@needs_data
def test_html_report_is_self_contained(report_data) -> None:
    content_type, body = reports.render_report(report_data, "html")
    page = body.decode("utf-8")
    assert content_type == "text/html; charset=utf-8"
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    for forbidden in ("<script", "<link", "<img", "src=", "@import", "<iframe", "<!DOCTYPE svg"):
        assert forbidden not in page, forbidden
    assert re.findall(r"url\((?!#)", page) == []  # only in-page references (SVG clip paths)
    # Sentiment distribution, its course by hour, topics, hashtags, actors and the network.
    assert page.count("<svg") == 6
    assert "#&lt;b&gt;bold&lt;/b&gt;" in page and "<b>bold</b>" not in page
    assert "<title>Midterms &lt;test&gt;</title>" in page


@needs_data
def test_json_and_markdown_reports(report_data) -> None:
    content_type, body = reports.render_report(report_data, "json")
    assert content_type == "application/json" and json.loads(body) == report_data
    content_type, body = reports.render_report(report_data, "markdown")
    text = body.decode("utf-8")
    assert content_type == "text/markdown; charset=utf-8"
    headings = re.findall(r"^#+ (.+)$", text, flags=re.MULTILINE)
    assert headings[:4] == ["Midterms <test>", "Sentiment by hour", "Topics", "Key phrases"]
    assert (
        f"| {report_data['topics'][0]['id']} | {', '.join(report_data['topics'][0]['terms'][:8])} |"
        in text
    )


def test_report_rejects_unknown_format() -> None:
    with pytest.raises(ValueError, match="fmt: must be one of json, markdown, html; got 'pdf'"):
        reports.render_report({}, "pdf")
    assert reports.render_report({}, "markdown") == (
        "text/markdown; charset=utf-8",
        b"# Analysis report\n",
    )
