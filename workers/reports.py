"""Reports a person reads: JSON, Markdown, or self-contained HTML with charts.

`data` holds any of these sections (missing ones are left out of the report):
``title``, ``source`` (one line saying what was analysed), ``sentiment``
(`sentiment.finalize_sentiment`), ``topics`` (`fit_topics(...)["topics"]`), ``hashtags``
(``[{"text", "count"}]``), ``entities`` (`entities.finalize_entities`), ``keywords``
(`extract_keywords`) and ``relationships`` (`analyze_relationships`).

The HTML embeds its charts as inline SVG drawn by matplotlib (no pyplot, Agg-free SVG
canvas) and its CSS inline; it loads nothing from the network: no scripts, fonts or images.
"""

from __future__ import annotations

import html
import io
import itertools
import os
import re
import tempfile
import warnings
from collections.abc import Callable
from importlib import resources
from typing import Any

import orjson

FORMATS = {
    "json": "application/json",
    "markdown": "text/markdown; charset=utf-8",
    "html": "text/html; charset=utf-8",
}
_SVG_START = re.compile(r"^.*?(?=<svg)", re.DOTALL)
_GREEN, _GREY, _RED, _BLUE = "#2e9d5b", "#9aa3ad", "#d64545", "#3b6fb6"
_PALETTE = ["#3b6fb6", "#e07b39", "#2e9d5b", "#b5485d", "#7d5ba6", "#c9a227", "#2a9bb3", "#8c6d46"]


def init() -> None:
    """Pool initializer hook: make matplotlib usable in a worker and build its font cache."""
    if not os.environ.get("MPLCONFIGDIR") and not os.access(os.path.expanduser("~"), os.W_OK):
        os.environ["MPLCONFIGDIR"] = tempfile.mkdtemp(prefix="rpcsvc-mpl-")
    import matplotlib

    matplotlib.rcParams.update({"svg.fonttype": "none", "svg.hashsalt": "rpcsvc"})
    from matplotlib import font_manager

    font_manager.findfont("DejaVu Sans")


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
        body = _html(data).encode("utf-8")
    return FORMATS[fmt], body


# --- Shared pieces ----------------------------------------------------------------------


def _headline_figures(data: dict[str, Any]) -> list[tuple[str, str]]:
    figures: list[tuple[str, str]] = []
    sentiment = data.get("sentiment") or {}
    if sentiment.get("count"):
        n = sentiment["count"]
        labels = sentiment.get("labels", {})
        figures += [
            ("posts", f"{n:,}"),
            ("mean sentiment", f"{sentiment.get('mean_compound', 0):+.3f}"),
            ("positive", f"{labels.get('positive', 0) / n:.0%}"),
            ("negative", f"{labels.get('negative', 0) / n:.0%}"),
        ]
    summary = (data.get("relationships") or {}).get("summary") or {}
    if summary:
        figures += [("actors in graph", f"{summary['nodes']:,}")]
        figures += [("interactions", f"{summary['interactions']:,}")]
    return figures


def _rows_topics(data: dict[str, Any]) -> list[list[str]]:
    return [
        [str(t["id"]), ", ".join(t["terms"][:8]), f"{t['size']:,}", f"{t['weight']:.1%}"]
        for t in data.get("topics") or []
    ]


def _rows_actors(rel: dict[str, Any]) -> list[list[str]]:
    return [
        [a["actor"], f"{a['score']:.4f}", f"{a['interactions_received']:,}"]
        for a in rel.get("central", {}).get("pagerank", [])
    ]


def _rows_communities(rel: dict[str, Any]) -> list[list[str]]:
    return [
        [
            str(c["id"]),
            f"{c['size']:,}",
            ", ".join(c["top_members"]),
            ", ".join(c["top_hashtags"]) or "-",
        ]
        for c in rel.get("communities", {}).get("items", [])
    ]


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
    figures = _headline_figures(data)
    if figures:
        out += [f"- **{label}**: {value}" for label, value in figures] + [""]
    sentiment = data.get("sentiment") or {}
    unit, series = _time_series(sentiment)
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
            _md_table(["id", "terms", "posts", "weight"], _rows_topics(data)),
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
            _md_table(["actor", "PageRank", "interactions received"], _rows_actors(rel)),
            "",
            "### Communities",
            "",
            _md_table(["id", "size", "top members", "top hashtags"], _rows_communities(rel)),
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


# --- Charts (matplotlib figures rendered to inline SVG) ------------------------------------


def _svg(draw: Callable[[Any], None], width: float, height: float) -> str:
    init()
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), layout="constrained")
    draw(figure)
    buffer = io.StringIO()
    with warnings.catch_warnings():
        # User text (emoji, CJK) may lack glyphs in the fallback font; the SVG keeps it as
        # text, so the browser draws it with its own fonts.
        warnings.filterwarnings("ignore", message="Glyph .* missing", category=UserWarning)
        figure.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None})
    return _SVG_START.sub("", buffer.getvalue(), count=1)


def _style(axes: Any) -> None:
    axes.spines[["top", "right"]].set_visible(False)
    axes.tick_params(labelsize=9)


def _chart_sentiment(sentiment: dict[str, Any]) -> str:
    def draw(figure: Any) -> None:
        left, right = figure.subplots(1, 2, width_ratios=[3, 1])
        edges = sentiment["histogram"]["edges"]
        counts = sentiment["histogram"]["counts"]
        centres = [(a + b) / 2 for a, b in itertools.pairwise(edges)]
        # The two bins around 0 hold the neutral band (-0.05, 0.05): grey.
        colours = [_GREEN if c > 0.1 else _RED if c < -0.1 else _GREY for c in centres]
        left.bar(centres, counts, width=edges[1] - edges[0], color=colours, edgecolor="white")
        left.set_xlabel("compound score (-1 negative ... +1 positive)", fontsize=9)
        left.set_ylabel("posts", fontsize=9)
        left.set_title("Distribution of sentiment", fontsize=11, loc="left")
        labels = sentiment["labels"]
        names = ["negative", "neutral", "positive"]
        right.bar(names, [labels[n] for n in names], color=[_RED, _GREY, _GREEN])
        right.set_title("Posts by label", fontsize=11, loc="left")
        for axes in (left, right):
            _style(axes)

    return _svg(draw, 9.0, 3.2)


def _time_series(sentiment: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    """Days when the posts span several, else hours (one day's posts still show a course)."""
    days = sentiment.get("by_day") or []
    if len(days) > 1 or not sentiment.get("by_hour"):
        return "day", days
    return "hour", sentiment["by_hour"]


def _chart_course(days: list[dict[str, Any]], unit: str) -> str:
    def draw(figure: Any) -> None:
        axes = figure.subplots()
        x = list(range(len(days)))
        counts = axes.twinx()
        counts.bar(x, [d["count"] for d in days], color="#dfe6ee", zorder=0)
        counts.set_ylabel("posts", fontsize=9, color="#6b7785")
        axes.set_zorder(counts.get_zorder() + 1)
        axes.patch.set_visible(False)
        axes.plot(x, [d["mean_compound"] for d in days], color=_BLUE, marker="o", lw=2)
        axes.axhline(0, color=_GREY, lw=0.8, ls="--")
        axes.set_ylabel("mean compound", fontsize=9)
        step = max(1, len(days) // 10)
        names = [d["period"] if unit == "day" else d["period"][-2:] + ":00" for d in days]
        axes.set_xticks(x[::step], names[::step], rotation=30, ha="right")
        when = "" if unit == "day" else f" on {days[0]['period'][:10]} (UTC)"
        axes.set_title(
            f"Sentiment by {unit}{when}: mean score (line) and posts (bars)",
            fontsize=11,
            loc="left",
        )
        _style(axes)
        counts.tick_params(labelsize=9)

    return _svg(draw, 9.0, 3.0)


def _chart_bars(labels: list[str], values: list[float], title: str, colour: str, unit: str) -> str:
    def draw(figure: Any) -> None:
        axes = figure.subplots()
        y = list(range(len(labels)))[::-1]
        axes.barh(y, values, color=colour)
        axes.set_yticks(y, [_shorten(label, 48) for label in labels])
        axes.set_xlabel(unit, fontsize=9)
        axes.set_title(title, fontsize=11, loc="left")
        _style(axes)

    return _svg(draw, 9.0, 0.8 + 0.32 * max(len(labels), 3))


def _chart_network(graph_json: dict[str, Any], max_nodes: int = 150) -> str:
    import networkx as nx

    # Draw the connected groups of three or more actors among the kept (most central) ones:
    # on sparse reply graphs most central actors sit in pairs that say nothing in a picture.
    nodes = graph_json["nodes"]
    keep = {n["id"] for n in nodes}
    graph = nx.Graph()
    graph.add_edges_from(
        (e["source"], e["target"])
        for e in graph_json["links"]
        if e["source"] in keep and e["target"] in keep
    )
    groups = sorted(nx.connected_components(graph), key=lambda c: (-len(c), min(c)))
    drawn: set[str] = set()
    for group in groups:
        if len(group) < 3 or len(drawn) + len(group) > max_nodes:
            break
        drawn |= group
    graph = graph.subgraph(drawn).copy()
    info = {n["id"]: n for n in nodes}
    biggest = sorted({info[n]["community"] for n in graph})[: len(_PALETTE)]
    colour = {c: _PALETTE[k] for k, c in enumerate(biggest)}

    def draw(figure: Any) -> None:
        axes = figure.subplots()
        axes.set_axis_off()
        axes.set_title(
            f"Interaction network: {graph.number_of_nodes()} central actors in groups of three "
            "or more, coloured by community; size shows PageRank",
            fontsize=11,
            loc="left",
        )
        if not graph.number_of_nodes():
            axes.text(0.5, 0.5, "no group of three or more interacting actors", ha="center")
            return
        layout = nx.spring_layout(graph, seed=0, k=1.2 / max(1, graph.number_of_nodes()) ** 0.5)
        top_rank = max(info[n]["pagerank"] for n in graph) or 1.0
        nx.draw_networkx_edges(graph, layout, ax=axes, alpha=0.25, width=0.8)
        nx.draw_networkx_nodes(
            graph,
            layout,
            ax=axes,
            node_size=[30 + 370 * info[n]["pagerank"] / top_rank for n in graph],
            node_color=[colour.get(info[n]["community"], "#c5ccd4") for n in graph],
            linewidths=0.5,
            edgecolors="white",
        )
        leaders: dict[int, str] = {}  # the most central member of each community drawn
        for n in sorted(graph, key=lambda n: -info[n]["pagerank"]):
            leaders.setdefault(info[n]["community"], n)
        labelled = list(leaders.values())[:10]
        nx.draw_networkx_labels(
            graph, layout, labels={n: info[n]["label"] for n in labelled}, font_size=7, ax=axes
        )

    return _svg(draw, 9.0, 6.5)


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


# --- HTML -------------------------------------------------------------------------------


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


def _html(data: dict[str, Any]) -> str:
    title = html.escape(str(data.get("title") or "Analysis report"))
    parts = [f"<h1>{title}</h1>"]
    if data.get("source"):
        parts.append(f'<p class="source">{html.escape(str(data["source"]))}</p>')
    figures = _headline_figures(data)
    if figures:
        tiles = "".join(
            f'<div class="tile"><b>{v}</b><span>{html.escape(k)}</span></div>' for k, v in figures
        )
        parts.append(f'<div class="tiles">{tiles}</div>')
    sentiment = data.get("sentiment") or {}
    if sentiment.get("count"):
        body = _chart_sentiment(sentiment)
        unit, series = _time_series(sentiment)
        if len(series) > 1:
            body += _chart_course(series, unit)
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
        chart = _chart_bars(
            [t["label"] for t in topics],
            [t["size"] for t in topics],
            "Posts per topic",
            _BLUE,
            "posts",
        )
        table = _table(["topic", "top terms", "posts", "weight"], _rows_topics(data), {2, 3})
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
        chart = _chart_bars(
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
            _chart_bars(
                [a["actor"] for a in ranked],
                [a["score"] for a in ranked],
                "Most central actors (PageRank)",
                "#e07b39",
                "PageRank",
            )
        )
    if rel["graph"]["nodes"]:
        out.append(_chart_network(rel["graph"]))
        if rel["graph"]["graph"]["truncated"]:
            g = rel["graph"]["graph"]
            out.append(
                '<p class="note">The picture and the graph data keep the '
                f"{len(rel['graph']['nodes']):,} most central of {g['total_nodes']:,} actors.</p>"
            )
    out.append(
        "<h3>Most central actors</h3>"
        + _table(["actor", "PageRank", "interactions received"], _rows_actors(rel), {1, 2})
    )
    out.append(
        "<h3>Communities</h3>"
        + _table(["id", "size", "top members", "top hashtags"], _rows_communities(rel), {1})
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
