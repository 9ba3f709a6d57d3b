"""The HTML report: one self-contained file (inline CSS, inline SVG charts, no scripts, fonts
or images from anywhere), readable without a network."""

from __future__ import annotations

import html
from importlib import resources
from typing import Any

from workers.report_charts import BLUE, chart_bars, chart_course, chart_network, chart_sentiment
from workers.report_data import (
    headline_figures,
    rows_actors,
    rows_communities,
    rows_topics,
    time_series,
)


def _css() -> str:
    return (resources.files("workers") / "data" / "report.css").read_text(encoding="utf-8")


def _table(header: list[str], rows: list[list[str]], numeric: set[int] | None = None) -> str:
    numeric = numeric or set()

    def cells(values: list[str], tag: str) -> str:
        return "".join(
            f"<{tag}{' class=num' if k in numeric else ''}>{v}</{tag}>"
            for k, v in enumerate(values)
        )

    head = f"<tr>{cells([html.escape(h) for h in header], 'th')}</tr>"
    body = "".join(f"<tr>{cells([html.escape(v) for v in row], 'td')}</tr>" for row in rows)
    return f"<table>{head}{body}</table>"


def render_html(data: dict[str, Any]) -> str:
    title = html.escape(str(data.get("title") or "Analysis report"))
    parts = [f"<h1>{title}</h1>"]
    if data.get("source"):
        parts.append(f'<p class="source">{html.escape(str(data["source"]))}</p>')
    figures = headline_figures(data)
    if figures:
        tiles = "".join(
            f'<div class="tile"><b>{v}</b><span>{html.escape(k)}</span></div>' for k, v in figures
        )
        parts.append(f'<div class="tiles">{tiles}</div>')
    sentiment = data.get("sentiment") or {}
    if sentiment.get("count"):
        body = chart_sentiment(sentiment)
        unit, series = time_series(sentiment)
        if len(series) > 1:
            body += chart_course(series, unit)
        elif series:
            body += (
                f'<p class="note">All dated posts are from {html.escape(series[0]["period"])}.</p>'
            )
        parts.append(
            f"<section><h2>Sentiment</h2>{body}<p class=note>VADER compound score; "
            "positive from +0.05, negative from -0.05.</p></section>"
        )
    topics = data.get("topics") or []
    if topics:
        chart = chart_bars(
            [t["label"] for t in topics],
            [t["size"] for t in topics],
            "Posts per topic",
            BLUE,
            "posts",
        )
        table = _table(["topic", "top terms", "posts", "weight"], rows_topics(data), {2, 3})
        parts.append(f"<section><h2>Topics</h2>{chart}{table}</section>")
    keywords = data.get("keywords") or []
    if keywords:
        chips = "".join(
            f'<span class="chip" style="font-size:{12 + 8 * float(k["score"]):.0f}px">'
            f"{html.escape(k['phrase'])}</span>"
            for k in keywords
        )
        parts.append(f'<section><h2>Key phrases</h2><div class="chips">{chips}</div></section>')
    hashtags = data.get("hashtags") or []
    if hashtags:
        top = hashtags[:15]
        chart = chart_bars(
            [h["text"] for h in top],
            [h["count"] for h in top],
            "Most used hashtags",
            "#7d5ba6",
            "posts",
        )
        parts.append(f"<section><h2>Hashtags</h2>{chart}</section>")
    parts += _html_entities(data.get("entities") or {})
    parts += _html_relationships(data.get("relationships") or {})
    body = "\n".join(parts)
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{title}</title><style>{_css()}</style></head>\n<body><main>\n{body}\n</main></body></html>\n"
    )


def _html_entities(entities: dict[str, Any]) -> list[str]:
    if not entities.get("names") and not entities.get("mentions") and not entities.get("domains"):
        return []
    out = ["<section><h2>Who and what is talked about</h2>"]
    if entities.get("names"):
        rows = "".join(
            f"<tr><td>{html.escape(n['text'])}</td>"
            f'<td><span class="kind">{html.escape(n["kind"])}</span></td>'
            f"<td class=num>{n['count']:,}</td></tr>"
            for n in entities["names"]
        )
        out.append(
            "<h3>Named entities</h3><table><tr><th>name</th><th>kind</th>"
            f"<th class=num>posts</th></tr>{rows}</table>"
        )
    for field, title in (("mentions", "Mentioned accounts"), ("domains", "Linked sites")):
        if entities.get(field):
            rows_ = [[e["text"], f"{e['count']:,}"] for e in entities[field]]
            out.append(f"<h3>{title}</h3>" + _table(["", "posts"], rows_, {1}))
    out.append("</section>")
    return out


def _html_relationships(rel: dict[str, Any]) -> list[str]:
    if not rel:
        return []
    s = rel["summary"]
    out = [
        "<section><h2>Interaction network</h2>",
        f"<p>{s['nodes']:,} actors and {s['edges']:,} directed edges carrying "
        f"{s['interactions']:,} interactions ({s['replies']:,} replies, {s['mentions']:,} "
        f"mentions) from {s['posts']:,} posts; {rel['communities']['count']:,} communities.</p>",
    ]
    ranked = rel["central"]["pagerank"]
    if ranked:
        out.append(
            chart_bars(
                [a["actor"] for a in ranked],
                [a["score"] for a in ranked],
                "Most central actors (PageRank)",
                "#e07b39",
                "PageRank",
            )
        )
    if rel["graph"]["nodes"]:
        out.append(chart_network(rel["graph"]))
        if rel["graph"]["graph"]["truncated"]:
            g = rel["graph"]["graph"]
            out.append(
                '<p class="note">The picture and the graph data keep the '
                f"{len(rel['graph']['nodes']):,} most central of {g['total_nodes']:,} actors.</p>"
            )
    out.append(
        "<h3>Most central actors</h3>"
        + _table(["actor", "PageRank", "interactions received"], rows_actors(rel), {1, 2})
    )
    out.append(
        "<h3>Communities</h3>"
        + _table(["id", "size", "top members", "top hashtags"], rows_communities(rel), {1})
    )
    bridges = rel.get("bridges", {}).get("actors", [])
    if bridges:
        rows = [[b["actor"], str(b["community"]), str(b["communities_reached"])] for b in bridges]
        out.append(
            "<h3>Bridges between communities</h3>"
            + _table(["actor", "community", "other communities reached"], rows, {1, 2})
        )
    pairs = rel.get("hashtags", {}).get("top_pairs", [])
    if pairs:
        rows = [[" + ".join("#" + t for t in p["tags"]), f"{p['posts']:,}"] for p in pairs]
        out.append("<h3>Hashtags used together</h3>" + _table(["pair", "posts"], rows, {1}))
    out.append("</section>")
    return out
