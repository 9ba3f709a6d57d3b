"""Settings: one dataclass with defaults, built from the environment and the command line."""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError

ENV_PREFIX = "RPCSVC_"


def _positive_int(value: str) -> int:
    number = int(value)
    if number < 1:
        raise ValueError("must be at least 1")
    return number


def _non_negative_float(value: str) -> float:
    number = float(value)
    if number < 0 or number != number:
        raise ValueError("must be a number >= 0")
    return number


def _positive_float(value: str) -> float:
    number = float(value)
    if not number > 0 or number == float("inf"):
        raise ValueError("must be a number > 0")
    return number


def _http_url(value: str) -> str:
    if not re.fullmatch(r"https?://[^/\s]+(/\S*)?", value):
        raise ValueError("must be an http(s) URL such as https://mastodon.social")
    return value.rstrip("/")


def _port(value: str) -> int:
    number = int(value)
    if not 0 <= number <= 65535:
        raise ValueError("must be between 0 and 65535")
    return number


def _optional_path(value: str) -> Path | None:
    return Path(value) if value else None


def _optional_str(value: str) -> str | None:
    return value or None


def _bool(value: str) -> bool:
    lowered = value.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise ValueError("must be true or false")


def _log_format(value: str) -> str:
    if value not in ("text", "json"):
        raise ValueError("must be 'text' or 'json'")
    return value


def _log_level(value: str) -> str:
    level = value.upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        raise ValueError("must be one of debug, info, warning, error, critical")
    return level


def _meta(parse: Callable[[str], Any], help: str) -> dict[str, Any]:
    return {"parse": parse, "help": help}


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Everything configurable, with the defaults a newcomer wants.

    Each field can be set by ``RPCSVC_<NAME>`` in the environment or ``--<name>`` on the command
    line (the command line wins). The README's configuration table is generated from here.
    """

    host: str = field(default="127.0.0.1", metadata=_meta(str, "Address to bind."))
    port: int = field(default=8080, metadata=_meta(_port, "TCP port to listen on."))
    workers: int = field(
        default_factory=lambda: os.cpu_count() or 1,
        metadata=_meta(_positive_int, "Worker processes in the pool (default: CPU count)."),
    )
    max_body_mib: float = field(
        default=256.0,
        metadata=_meta(_non_negative_float, "Largest accepted request body, in MiB."),
    )
    max_batch: int = field(
        default=10_000, metadata=_meta(_positive_int, "Most requests in one JSON-RPC batch.")
    )
    max_posts_per_task: int = field(
        default=1_000_000, metadata=_meta(_positive_int, "Most posts or texts in one task.")
    )
    max_pending: int = field(
        default=200_000,
        metadata=_meta(_positive_int, "Most pending tasks; beyond it task.create says queue full."),
    )
    chunk_size: int = field(
        default=2_000,
        metadata=_meta(_positive_int, "Posts per chunk when a bulk task is split across workers."),
    )
    result_ttl: float = field(
        default=3600.0,
        metadata=_meta(_non_negative_float, "Seconds a finished task is kept."),
    )
    max_finished: int = field(
        default=100_000,
        metadata=_meta(_positive_int, "Most finished tasks kept; the oldest are evicted first."),
    )
    max_tasks_per_child: int | None = field(
        default=None,
        metadata=_meta(
            lambda v: _positive_int(v) if v else None,
            "Replace a worker process after this many pool calls (default: never).",
        ),
    )
    max_attempts: int = field(
        default=2,
        metadata=_meta(_positive_int, "Attempts before a task that kills its worker fails."),
    )
    shutdown_grace: float = field(
        default=10.0,
        metadata=_meta(_non_negative_float, "Seconds running tasks get to finish on shutdown."),
    )
    token: str | None = field(
        default=None,
        metadata=_meta(_optional_str, "Bearer token required on /rpc when set."),
        repr=False,
    )
    state_file: Path | None = field(
        default=None, metadata=_meta(_optional_path, "SQLite file for task records (off).")
    )
    import_dir: Path | None = field(
        default=None,
        metadata=_meta(_optional_path, "Folder the `file` platform may read from (off)."),
    )
    max_content: int = field(
        default=2_000_000, metadata=_meta(_positive_int, "Most posts in the content store.")
    )
    reports_dir: Path | None = field(
        default=None,
        metadata=_meta(
            _optional_path,
            "Folder for report bodies (default: a temporary folder removed at shutdown).",
        ),
    )
    collect_concurrency: int = field(
        default=8,
        metadata=_meta(_positive_int, "Entities one collection task fetches at the same time."),
    )
    http_per_host_limit: int = field(
        default=4, metadata=_meta(_positive_int, "Most requests in flight to one platform host.")
    )
    http_timeout: float = field(
        default=30.0,
        metadata=_meta(_positive_float, "Seconds one request to a platform may take."),
    )
    http_max_attempts: int = field(
        default=4,
        metadata=_meta(
            _positive_int, "Attempts per platform request (timeouts, connection errors, 5xx, 429)."
        ),
    )
    http_backoff_base: float = field(
        default=0.5,
        metadata=_meta(
            _non_negative_float, "Seconds before the first retry; doubles each retry, with jitter."
        ),
    )
    max_rate_limit_wait: float = field(
        default=300.0,
        metadata=_meta(
            _non_negative_float,
            "Longest wait a platform's rate limit may impose; beyond it the entity fails.",
        ),
    )
    user_agent: str | None = field(
        default=None,
        metadata=_meta(_optional_str, "User-Agent sent to platforms (default: rpcsvc/<version>)."),
    )
    mastodon_url: str = field(
        default="https://mastodon.social",
        metadata=_meta(_http_url, "Mastodon instance used when options.base_url is not given."),
    )
    bluesky_url: str = field(
        default="https://public.api.bsky.app",
        metadata=_meta(_http_url, "Bluesky AppView used when options.base_url is not given."),
    )
    reddit_url: str = field(
        default="https://www.reddit.com",
        metadata=_meta(_http_url, "Reddit host used when options.base_url is not given."),
    )
    debug_tasks: bool = field(
        default=False,
        metadata=_meta(_bool, "Register the debug.* task types (sleep, fail, crash): tests only."),
    )
    log_level: str = field(default="INFO", metadata=_meta(_log_level, "Logging level."))
    log_format: str = field(default="text", metadata=_meta(_log_format, "`text` or `json`."))
    access_log: bool = field(
        default=False,
        metadata=_meta(
            _bool,
            "A line per HTTP request on `aiohttp.access` (INFO). Off by default: it cut the "
            "task.status rate by a third here, and /metrics counts requests by method and code.",
        ),
    )

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, **overrides: str | None
    ) -> Settings:
        """Settings from ``RPCSVC_*`` variables, then ``overrides`` (raw strings, e.g. from argv).

        Raises :class:`ConfigError` with one clear line naming the setting and the problem.
        """
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            env_name = ENV_PREFIX + f.name.upper()
            # Empty means unset, so that compose files can pass ${RPCSVC_X:-} through.
            raw: str | None = environ.get(env_name) or None
            source = env_name
            if overrides.get(f.name) is not None:
                raw, source = overrides[f.name], "--" + f.name.replace("_", "-")
            if raw is None:
                continue
            try:
                values[f.name] = f.metadata["parse"](raw.strip())
            except ValueError as exc:
                problem = str(exc) if "must" in str(exc) else f"not a valid value ({exc})"
                raise ConfigError(f"{source}={raw!r}: {problem}") from None
        unknown = set(overrides) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ConfigError(f"unknown settings: {', '.join(sorted(unknown))}")
        return cls(**values)

    @property
    def max_body_bytes(self) -> int:
        return int(self.max_body_mib * 1024 * 1024)


def settings_table() -> str:
    """The README's configuration table, made from the dataclass so the two cannot drift."""
    rows = ["| option | environment | default | meaning |", "|---|---|---|---|"]
    for f in dataclasses.fields(Settings):
        if f.default is not dataclasses.MISSING:
            default = "—" if f.default is None else f"`{f.default}`"
        else:
            default = "CPU count" if f.name == "workers" else "(computed)"
        rows.append(
            f"| `--{f.name.replace('_', '-')}` | `{ENV_PREFIX}{f.name.upper()}` | {default} "
            f"| {f.metadata['help']} |"
        )
    return "\n".join(rows)
