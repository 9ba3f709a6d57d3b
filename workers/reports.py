"""Reports a person reads: JSON, Markdown, or self-contained HTML with charts.

`data` holds any of these sections (missing ones are left out of the report):
``title``, ``source`` (one line saying what was analysed), ``sentiment``
(`sentiment.finalize_sentiment`), ``topics`` (`fit_topics(...)["topics"]`), ``hashtags``
(``[{"text", "count"}]``), ``entities`` (`entities.finalize_entities`), ``keywords``
(`extract_keywords`) and ``relationships`` (`analyze_relationships`).

The HTML (`workers.report_html`) embeds its charts (`workers.report_charts`) as inline SVG
and its CSS inline; it loads nothing from the network: no scripts, fonts or images.
"""

from __future__ import annotations

from typing import Any

import orjson

from workers import report_charts
from workers.report_data import (
    headline_figures,
    rows_actors,
    rows_communities,
    rows_topics,
    time_series,
)
from workers.report_html import render_html

FORMATS = {
    "json": "application/json",
    "markdown": "text/markdown; charset=utf-8",
    "html": "text/html; charset=utf-8",
}


def init() -> None:
    """Make matplotlib usable in this process and build its font cache (~0.7 s, so reports
    call it on first use rather than every worker paying it at start)."""
    report_charts.init()


def render_report(data: dict[str, Any], fmt: str) -> tuple[str, bytes]:
    """(content type, body) of the report of `data` in `fmt`: json, markdown or html."""
    if fmt not in FORMATS:
        raise ValueError(f"fmt: must be one of {', '.join(FORMATS)}; got {fmt!r}")
    if not isinstance(data, dict):
        raise ValueError(f"data: must be an object, got {type(data).__name__}")
    if fmt == "json":
        body = orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS)
    elif fmt == "markdown":
        body = _markdown(data).encode("utf-8")
    else:
        body = render_html(data).encode("utf-8")
    return FORMATS[fmt], body


# --- Markdown ---------------------------------------------------------------------------


def _md_table(header: list[str], rows: list[list[str]]) -> str:
    def cell(value: str) -> str:
        return value.replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def _markdown(data: dict[str, Any]) -> str:
    out = [f"# {data.get('title') or 'Analysis report'}", ""]
    if data.get("source"):
        out += [str(data["source"]), ""]
    figures = headline_figures(data)
    if figures:
        out += [f"- **{label}**: {value}" for label, value in figures] + [""]
    sentiment = data.get("sentiment") or {}
    unit, series = time_series(sentiment)
    if series:
        out += [f"## Sentiment by {unit}", ""]
        rows = [
            [
                d["period"],
                f"{d['count']:,}",
                f"{d['mean_compound']:+.3f}",
                str(d["positive"]),
                str(d["negative"]),
            ]
            for d in series
        ]
        out += [_md_table([unit, "posts", "mean", "positive", "negative"], rows), ""]
    if data.get("topics"):
        out += [
            "## Topics",
            "",
            _md_table(["id", "terms", "posts", "weight"], rows_topics(data)),
            "",
        ]
    if data.get("keywords"):
        rows = [
            [k["phrase"], f"{k['score']:.2f}", f"{k.get('posts', '')}"] for k in data["keywords"]
        ]
        out += ["## Key phrases", "", _md_table(["phrase", "score", "posts"], rows), ""]
    if data.get("hashtags"):
        rows = [[h["text"], f"{h['count']:,}"] for h in data["hashtags"]]
        out += ["## Hashtags", "", _md_table(["hashtag", "posts"], rows), ""]
    entities = data.get("entities") or {}
    if entities.get("names"):
        rows = [[n["text"], n["kind"], f"{n['count']:,}"] for n in entities["names"]]
        out += ["## Named entities", "", _md_table(["name", "kind", "posts"], rows), ""]
    for field, title in (("mentions", "Mentioned accounts"), ("domains", "Linked sites")):
        if entities.get(field):
            rows = [[e["text"], f"{e['count']:,}"] for e in entities[field]]
            out += [f"## {title}", "", _md_table(["", "posts"], rows), ""]
    rel = data.get("relationships") or {}
    if rel:
        s = rel["summary"]
        out += [
            "## Interaction network",
            "",
            f"{s['nodes']:,} actors, {s['edges']:,} edges, {s['interactions']:,} interactions "
            f"({s['replies']:,} replies, {s['mentions']:,} mentions) from {s['posts']:,} posts; "
            f"{rel['communities']['count']:,} communities.",
            "",
            "### Most central actors",
            "",
            _md_table(["actor", "PageRank", "interactions received"], rows_actors(rel)),
            "",
            "### Communities",
            "",
            _md_table(["id", "size", "top members", "top hashtags"], rows_communities(rel)),
            "",
        ]
        bridges = rel.get("bridges", {}).get("actors", [])
        if bridges:
            rows = [
                [b["actor"], str(b["community"]), str(b["communities_reached"])] for b in bridges
            ]
            out += [
                "### Bridges",
                "",
                _md_table(["actor", "community", "other communities reached"], rows),
                "",
            ]
    return "\n".join(out)
