"""The reports' charts: matplotlib figures rendered to inline SVG strings.

Figures are drawn on matplotlib's object API (no pyplot, no global state) with an SVG canvas,
text kept as text (`svg.fonttype: none`) so the browser renders it, and fixed ids
(`svg.hashsalt`) so the same data gives the same bytes.
"""

from __future__ import annotations

import io
import itertools
import os
import re
import tempfile
import warnings
from collections.abc import Callable
from typing import Any

_SVG_START = re.compile(r"^.*?(?=<svg)", re.DOTALL)
GREEN, GREY, RED, BLUE = "#2e9d5b", "#9aa3ad", "#d64545", "#3b6fb6"
PALETTE = ["#3b6fb6", "#e07b39", "#2e9d5b", "#b5485d", "#7d5ba6", "#c9a227", "#2a9bb3", "#8c6d46"]


def init() -> None:
    """Make matplotlib usable in this process (a writable config dir, SVG text as text, fixed
    ids) and build its font cache; cheap after the first call."""
    if not os.environ.get("MPLCONFIGDIR") and not os.access(os.path.expanduser("~"), os.W_OK):
        os.environ["MPLCONFIGDIR"] = tempfile.mkdtemp(prefix="rpcsvc-mpl-")
    import matplotlib

    matplotlib.rcParams.update({"svg.fonttype": "none", "svg.hashsalt": "rpcsvc"})
    from matplotlib import font_manager

    font_manager.findfont("DejaVu Sans")


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


def chart_sentiment(sentiment: dict[str, Any]) -> str:
    def draw(figure: Any) -> None:
        left, right = figure.subplots(1, 2, width_ratios=[3, 1])
        edges = sentiment["histogram"]["edges"]
        counts = sentiment["histogram"]["counts"]
        centres = [(a + b) / 2 for a, b in itertools.pairwise(edges)]
        # The two bins around 0 hold the neutral band (-0.05, 0.05): grey.
        colours = [GREEN if c > 0.1 else RED if c < -0.1 else GREY for c in centres]
        left.bar(centres, counts, width=edges[1] - edges[0], color=colours, edgecolor="white")
        left.set_xlabel("compound score (-1 negative ... +1 positive)", fontsize=9)
        left.set_ylabel("posts", fontsize=9)
        left.set_title("Distribution of sentiment", fontsize=11, loc="left")
        labels = sentiment["labels"]
        names = ["negative", "neutral", "positive"]
        right.bar(names, [labels[n] for n in names], color=[RED, GREY, GREEN])
        right.set_title("Posts by label", fontsize=11, loc="left")
        for axes in (left, right):
            _style(axes)

    return _svg(draw, 9.0, 3.2)


def chart_course(days: list[dict[str, Any]], unit: str) -> str:
    def draw(figure: Any) -> None:
        axes = figure.subplots()
        x = list(range(len(days)))
        counts = axes.twinx()
        counts.bar(x, [d["count"] for d in days], color="#dfe6ee", zorder=0)
        counts.set_ylabel("posts", fontsize=9, color="#6b7785")
        axes.set_zorder(counts.get_zorder() + 1)
        axes.patch.set_visible(False)
        axes.plot(x, [d["mean_compound"] for d in days], color=BLUE, marker="o", lw=2)
        axes.axhline(0, color=GREY, lw=0.8, ls="--")
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


def chart_bars(labels: list[str], values: list[float], title: str, colour: str, unit: str) -> str:
    def draw(figure: Any) -> None:
        axes = figure.subplots()
        y = list(range(len(labels)))[::-1]
        axes.barh(y, values, color=colour)
        axes.set_yticks(y, [_shorten(label, 48) for label in labels])
        axes.set_xlabel(unit, fontsize=9)
        axes.set_title(title, fontsize=11, loc="left")
        _style(axes)

    return _svg(draw, 9.0, 0.8 + 0.32 * max(len(labels), 3))


def chart_network(graph_json: dict[str, Any], max_nodes: int = 150) -> str:
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
    biggest = sorted({info[n]["community"] for n in graph})[: len(PALETTE)]
    colour = {c: PALETTE[k] for k, c in enumerate(biggest)}

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
