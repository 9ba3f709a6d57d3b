"""The ``file`` platform: posts from JSON Lines files under the configured import folder.

Entity ids are paths relative to the import folder (absolute paths inside it also work): one
file, or a directory whose ``*.jsonl``, ``*.ndjson`` and ``*.json`` files (each optionally
``.gz``) are read in name order, recursively. Each line is one JSON object:

- an already-normalised post (``text`` plus ``content_id`` or ``platform`` and ``id``),
  validated like ``content.add`` input; or
- a Reddit comment or submission in the Pushshift shape (``subreddit``, ``created_utc`` and
  ``body`` or ``title``), such as the MEIU22 dumps; these become ``platform: "reddit"`` posts.

Paths that lead outside the folder, by ``..``, an absolute path or a symlink, are refused with
``PathNotAllowed`` (also when they do not exist, so nothing outside is revealed). A bad line
fails the entity naming the file and line, unless ``options.skip_invalid`` is true.
Reading and parsing run in a thread, a page at a time, so the event loop stays free.
"""

from __future__ import annotations

import asyncio
import gzip
import logging
import threading
from collections.abc import AsyncGenerator, Generator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from rpcsvc import content  # the module, not its names: rpcsvc.content imports .base
from rpcsvc.errors import CollectionError, EntityNotFound, InvalidParams, PathNotAllowed

from .base import COMMON_OPTIONS, CollectionSettings, Post, in_window, page_size
from .http import HttpClient
from .reddit import normalise_thing

log = logging.getLogger(__name__)

SUFFIXES = (".jsonl", ".ndjson", ".json")
DEFAULT_PAGE = 1000


def resolve_import_path(import_dir: Path | None, entity_id: str) -> Path:
    """The real path ``entity_id`` names inside ``import_dir``, or why it may not be read."""
    if import_dir is None:
        raise PathNotAllowed(
            "the file platform is off: no import folder is configured (setting import_dir)"
        )
    root = import_dir.resolve()
    candidate = Path(entity_id)
    resolved = (candidate if candidate.is_absolute() else root / candidate).resolve()
    if not resolved.is_relative_to(root):
        raise PathNotAllowed(
            f"{entity_id!r} is outside the import folder", data={"path": entity_id}
        )
    if not resolved.exists():
        raise EntityNotFound(f"no file or folder {entity_id!r} in the import folder")
    return resolved


def _is_data_file(path: Path) -> bool:
    name = path.name.removesuffix(".gz")
    return path.is_file() and name.endswith(SUFFIXES)


def list_files(root: Path, path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    files = sorted(p for p in path.rglob("*") if _is_data_file(p))
    for file in files:
        if not file.resolve().is_relative_to(root):
            raise PathNotAllowed(
                f"{file.relative_to(root)} links outside the import folder",
                data={"path": str(file)},
            )
    return files


def line_to_post(obj: Any, *, include_raw: bool) -> Post:
    """One JSON Lines object as a normalised post; ValueError says why it is neither kind."""
    if not isinstance(obj, dict):
        raise ValueError("not a JSON object")
    if "subreddit" in obj and "created_utc" in obj and ("body" in obj or "title" in obj):
        return normalise_thing(obj, include_raw=include_raw, unescape=True)
    if "text" in obj and ("content_id" in obj or "id" in obj):
        try:
            return content.validate_post(obj, field="post")
        except InvalidParams as exc:
            raise ValueError(f"{exc.field}: {exc.problem}") from None
    raise ValueError("neither a normalised post (text, id) nor a Pushshift Reddit object")


class _BatchReader:
    """Pages of posts from a list of files; every call runs in a worker thread.

    The lock makes ``close`` wait for a page being read, so a cancelled collection can close
    its file from any thread without racing the reader.
    """

    def __init__(
        self, files: list[Path], *, size: int, include_raw: bool, skip_invalid: bool
    ) -> None:
        self._lock = threading.Lock()
        self._lines = self._read(files, size, include_raw, skip_invalid)

    def _read(
        self, files: list[Path], size: int, include_raw: bool, skip_invalid: bool
    ) -> Generator[list[Post], None, None]:
        batch: list[Post] = []
        for file in files:
            opener = gzip.open if file.suffix == ".gz" else open
            with opener(file, "rt", encoding="utf-8") as handle:
                for number, line in enumerate(handle, 1):
                    if not line.strip():
                        continue
                    try:
                        batch.append(line_to_post(orjson.loads(line), include_raw=include_raw))
                    except ValueError as exc:  # orjson.JSONDecodeError is a ValueError
                        if not skip_invalid:
                            raise CollectionError(
                                f"{file.name} line {number}: {exc}",
                                data={"file": file.name, "line": number},
                            ) from None
                        log.warning("%s line %d skipped: %s", file.name, number, exc)
                        continue
                    if len(batch) >= size:
                        yield batch
                        batch = []
        if batch:
            yield batch

    def next_batch(self) -> list[Post] | None:
        with self._lock:
            return next(self._lines, None)

    def close(self) -> None:
        with self._lock:
            self._lines.close()

    def close_soon(self) -> None:
        """Close now if idle; if a (cancelled) page read is still running, once it ends."""
        if self._lock.acquire(blocking=False):
            try:
                self._lines.close()
            finally:
                self._lock.release()
        else:
            threading.Thread(target=self.close, name="rpcsvc-file-close", daemon=True).start()


class FileConnector:
    name = "file"
    options = COMMON_OPTIONS | {"skip_invalid"}
    choices: Mapping[str, tuple[str, ...]] = {}

    def __init__(self, http: HttpClient | None, settings: CollectionSettings) -> None:
        self.settings = settings

    def check_entity(self, entity_id: str) -> str | None:
        return None if entity_id.strip() else "expected a path inside the import folder"

    async def fetch(
        self,
        entity_id: str,
        *,
        since: datetime | None,
        until: datetime | None,
        limit: int | None,
        options: Mapping[str, Any],
    ) -> AsyncGenerator[list[Post], None]:
        import_dir = self.settings.import_dir
        path = resolve_import_path(import_dir, entity_id)
        assert import_dir is not None  # resolve_import_path refused it otherwise
        files = list_files(import_dir.resolve(), path)
        if not files:
            raise EntityNotFound(f"{entity_id!r} holds no {'/'.join(SUFFIXES)}(.gz) files")
        reader = _BatchReader(
            files,
            size=page_size(options, maximum=DEFAULT_PAGE, limit=None),
            include_raw=bool(options.get("include_raw")),
            skip_invalid=bool(options.get("skip_invalid")),
        )
        remaining = limit
        loop = asyncio.get_running_loop()
        try:
            while remaining is None or remaining > 0:
                batch = await loop.run_in_executor(None, reader.next_batch)
                if batch is None:
                    return
                kept = [p for p in batch if in_window(p["created_at"], since, until)]
                if remaining is not None:
                    kept = kept[:remaining]
                    remaining -= len(kept)
                if kept:
                    yield kept
        finally:
            reader.close_soon()
