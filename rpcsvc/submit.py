"""``rpcsvc submit``: a JSON Lines file of posts in, the analysis result out.

The posts go to the server's content store with ``content.add`` in batches and the analysis
names them by ``content_id``, when the server has a content store (``rpc.discover`` lists
``content.add`` and ``analyze_content`` takes ``content_ids``); otherwise they travel inline
in ``task.create``. Either way a progress bar follows the task's ``progress`` and Ctrl-C
cancels the task on the server.
"""

from __future__ import annotations

import asyncio
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import orjson
from tqdm import tqdm

from . import errors
from .client import FINISHED, RpcClient

TASK_TYPE = "analyze_content"
_POST_INDEX = re.compile(r"posts\[(\d+)\](.*)")


class SubmitError(Exception):
    """Bad input or a refused upload, as one line for the person at the terminal."""


@dataclass(frozen=True)
class Capabilities:
    """What the server can do for ``submit``, read from its OpenRPC document."""

    content_store: bool
    analysis_types: list[str] | None  # None: the server does not say

    @classmethod
    def from_document(cls, document: dict[str, Any]) -> Capabilities:
        names = {method.get("name") for method in document.get("methods", [])}
        schemas = document.get("components", {}).get("schemas", {})
        properties = schemas.get(f"TaskParams.{TASK_TYPE}", {}).get("properties", {})
        enum = properties.get("analysis_types", {}).get("items", {}).get("enum")
        return cls(
            content_store="content.add" in names and "content_ids" in properties,
            analysis_types=list(enum) if enum else None,
        )


@dataclass(frozen=True)
class PostsFile:
    """The posts of a JSON Lines file, and the line each came from (for error messages)."""

    name: str
    posts: list[dict[str, Any]]
    lines: list[int]


def read_posts(path: Path, stream: TextIO | None = None) -> PostsFile:
    """Posts from a JSON Lines file (one object with a ``text`` a line; blank lines skipped).

    A post without ``id`` or ``content_id`` gets ``<file stem>-<line number>`` as its id,
    so that results can be matched to lines and a second upload updates, not duplicates.
    """
    posts: list[dict[str, Any]] = []
    numbers: list[int] = []
    name = str(path)
    lines = stream if stream is not None else path.open(encoding="utf-8")
    with lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                post = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                raise SubmitError(f"{name}:{number}: not valid JSON ({exc})") from None
            if not isinstance(post, dict) or not isinstance(post.get("text"), str):
                raise SubmitError(f"{name}:{number}: expected an object with a string 'text'")
            if "id" not in post and "content_id" not in post:
                post["id"] = f"{path.stem}-{number}"
            posts.append(post)
            numbers.append(number)
    if not posts:
        raise SubmitError(f"{name}: no posts")
    return PostsFile(name, posts, numbers)


async def submit(
    rpc: RpcClient,
    source: PostsFile,
    *,
    analysis_types: list[str],
    priority: str = "normal",
    batch_size: int = 2000,
    summary_only: bool = False,
    progress: bool = True,
    log: TextIO | None = None,
) -> dict[str, Any]:
    """Upload, analyse and follow; the finished task record. Cancelled if interrupted.

    Progress bars and notes go to ``log`` (standard error).
    """
    log = log or sys.stderr
    capabilities = Capabilities.from_document(await rpc.discover())
    known = capabilities.analysis_types
    unknown = [name for name in analysis_types if known is not None and name not in known]
    if unknown:
        raise SubmitError(
            f"unknown analysis {', '.join(unknown)}; this server offers {', '.join(known or [])}"
        )
    params: dict[str, Any] = {"analysis_types": analysis_types}
    if summary_only:
        params["detail"] = "summary"
    posts = source.posts
    if capabilities.content_store:
        params["content_ids"] = await _upload(rpc, source, batch_size, progress, log)
    else:
        params["posts"] = posts
    try:
        task = await rpc.create(TASK_TYPE, params, priority=priority)
    except errors.InvalidParams as exc:
        raise SubmitError(_where(exc, source, offset=0)) from None
    print(
        f"rpcsvc: task {task['task_id']} created ({len(posts)} posts); Ctrl-C cancels it",
        file=log,
        flush=True,
    )
    try:
        return await _follow(rpc, task, len(posts), progress, log)
    except asyncio.CancelledError:  # Ctrl-C: asyncio.run cancels this coroutine
        cancelled = await rpc.cancel(task["task_id"])
        print(f"rpcsvc: task {task['task_id']} {cancelled['status']}", file=log, flush=True)
        raise


async def _upload(
    rpc: RpcClient, source: PostsFile, batch_size: int, progress: bool, log: TextIO
) -> list[str]:
    posts = source.posts
    content_ids: list[str] = []
    with tqdm(total=len(posts), desc="upload", unit="post", file=log, disable=not progress) as bar:
        for start in range(0, len(posts), batch_size):
            batch = posts[start : start + batch_size]
            try:
                added = await rpc.content_add(batch)
            except errors.InvalidParams as exc:
                raise SubmitError(_where(exc, source, offset=start)) from None
            content_ids.extend(added["content_ids"])
            bar.update(len(batch))
    return content_ids


async def _follow(
    rpc: RpcClient, task: dict[str, Any], count: int, progress: bool, log: TextIO
) -> dict[str, Any]:
    with tqdm(total=count, desc="analyse", unit="post", file=log, disable=not progress) as bar:
        async for record in rpc.watch(task["task_id"]):
            done = record["progress"]
            if done:
                bar.total = done["total"]
                bar.n = done["done"]
            if record["status"] == "completed":
                bar.n = bar.total
            bar.set_postfix_str(record["status"], refresh=False)
            bar.refresh()
            task = record
    assert task["status"] in FINISHED
    return task


def _where(exc: errors.InvalidParams, source: PostsFile, *, offset: int) -> str:
    """The server's ``posts[i].field`` problem as ``file:line: field: problem``."""
    match = _POST_INDEX.search(exc.field)
    index = None if match is None else int(match.group(1)) + offset
    if index is None or index >= len(source.lines):
        return exc.message
    field = match.group(2).lstrip(".") if match else ""
    return f"{source.name}:{source.lines[index]}: {field or 'post'}: {exc.problem}"


def write_result(task: dict[str, Any], out: Path | None) -> None:
    """The task's result as indented JSON, to ``out`` or to standard output."""
    body = orjson.dumps(task["result"], option=orjson.OPT_INDENT_2) + b"\n"
    if out is None:
        sys.stdout.buffer.write(body)
        sys.stdout.flush()
    else:
        out.write_bytes(body)
