"""``generate_report`` inside the pool: gather the report's sections, render, store the body.

The body is written by the worker to the file the server named (``ReportSpec.path``) and
only small metadata travels back: a report with charts is hundreds of kilobytes that the
server would otherwise hold in the task record and echo on every ``task.status``.
Reports over posts reuse ``analyze_content``'s chunks and whole-set step, plus the
interaction graph as one more pool call, so a big set is analysed on every worker.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from workers import content, relationships, reports


@dataclass(frozen=True, slots=True)
class ReportSpec:
    """What to render and where the body goes."""

    fmt: str  # json, markdown or html
    title: str
    source: str  # one line saying what was analysed
    path: str  # the file the server serves at ``url``
    url: str


def relationships_partial(
    posts: list[dict[str, Any]], graph: relationships.GraphOptions
) -> dict[str, Any]:
    """The interaction graph of the posts, as one partial of a report's plan."""
    return {"kind": "relationships", "result": relationships.analyze_with(posts, graph)}


def report_from_records(
    spec: ReportSpec, content_record: bytes | None, relationships_record: bytes | None
) -> dict[str, Any]:
    """The report of finished tasks, from their records' JSON as the server keeps them: parsed
    here, in the pool (a bulk task's record is tens of megabytes), per-post rows left out."""
    content_result = None
    if content_record is not None:
        content_result = orjson.loads(content_record)["result"]
        content_result.pop("posts", None)
    relationships_result = None
    if relationships_record is not None:
        relationships_result = orjson.loads(relationships_record)["result"]
    return write_report(spec, report_data(spec, content_result, relationships_result))


def report_from_posts(
    spec: ReportSpec,
    items: Sequence[content.Item],
    posts: list[dict[str, Any]],
    graph: relationships.GraphOptions,
    options: content.ContentOptions,
) -> dict[str, Any]:
    """A small report over posts in one pool call: analysis, graph, rendering."""
    partials = [
        content.analyze_chunk(items, options),
        content.analyze_whole_set([text for _, text, _ in items], options),
        relationships_partial(posts, graph),
    ]
    return finish_report(spec, options, partials)


def finish_report(
    spec: ReportSpec, options: content.ContentOptions, partials: list[dict[str, Any]]
) -> dict[str, Any]:
    """The finish step of a chunked report over posts: merge, render, store."""
    graph = next(p["result"] for p in partials if p["kind"] == "relationships")
    merged = content.merge_chunks(options, partials)
    return write_report(spec, report_data(spec, merged, graph))


def report_data(
    spec: ReportSpec,
    content_result: dict[str, Any] | None,
    relationships_result: dict[str, Any] | None,
) -> dict[str, Any]:
    """The sections `reports.render_report` takes, from the two task types' results."""
    data: dict[str, Any] = {"title": spec.title, "source": spec.source}
    if content_result is not None:
        summary = content_result.get("summary") or {}
        if "labels" in summary and "sentiment" in content_result:
            data["sentiment"] = {**summary, **content_result["sentiment"]}
        for section in ("topics", "hashtags", "entities", "keywords"):
            if section in content_result:
                data[section] = content_result[section]
    if relationships_result is not None:
        data["relationships"] = relationships_result
    return data


def write_report(spec: ReportSpec, data: dict[str, Any]) -> dict[str, Any]:
    """Render `data`, write the body to ``spec.path`` whole or not at all, and describe it:
    ``{"format", "content_type", "size", "title", "url", "sections"}``."""
    content_type, body = reports.render_report(data, spec.fmt)
    partial_path = f"{spec.path}.{os.getpid()}.part"
    with open(partial_path, "wb") as f:
        f.write(body)
    os.replace(partial_path, spec.path)  # a reader never sees half a report
    return {
        "format": spec.fmt,
        "content_type": content_type,
        "size": len(body),
        "title": spec.title,
        "url": spec.url,
        "sections": [key for key in data if key not in ("title", "source")],
    }
