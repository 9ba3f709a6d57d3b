"""``rpcsvc`` on the command line.

``rpcsvc serve`` runs the server; ``rpcsvc call``, ``submit`` and ``tasks`` talk to a running
one (``--url``/``RPCSVC_URL``, ``--token``/``RPCSVC_TOKEN``).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import re
import sys
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from .client import DEFAULT_URL, HttpError, RpcClient
from .config import Settings
from .errors import ConfigError, RpcsvcError
from .logs import configure_logging
from .submit import SubmitError, read_posts, submit, write_result


def _serve_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    serve = sub.add_parser("serve", help="run the JSON-RPC server")
    for f in dataclasses.fields(Settings):
        serve.add_argument(
            "--" + f.name.replace("_", "-"),
            dest=f.name,
            metavar=f.name.upper(),
            help=f"{f.metadata['help']} [env RPCSVC_{f.name.upper()}]",
        )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rpcsvc", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    _serve_parser(sub)
    _client_parsers(sub)
    return parser


def serve(settings: Settings) -> None:
    """Run until SIGTERM/SIGINT; then drain for ``shutdown_grace`` s (see ``rpcsvc.server``)."""
    from .server import serve_until_signalled

    configure_logging(settings.log_level, settings.log_format)
    asyncio.run(serve_until_signalled(settings))


# --- client commands -----------------------------------------------------------------------

_NAMED_PARAM = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)=(.*)", re.DOTALL)
TASK_COLUMNS = ("TASK ID", "TYPE", "STATUS", "PRIORITY", "PROGRESS", "CREATED", "DURATION")


def _client_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--url",
        default=os.environ.get("RPCSVC_URL", DEFAULT_URL),
        help="the server, e.g. http://127.0.0.1:8080 [env RPCSVC_URL]",
    )
    common.add_argument(
        "--token",
        default=os.environ.get("RPCSVC_TOKEN") or None,
        help="bearer token, when the server requires one [env RPCSVC_TOKEN]",
    )
    call = sub.add_parser(
        "call",
        parents=[common],
        help="call one JSON-RPC method and print its result as JSON",
        description="Params are key=value (by name) or bare values (by position); a value is "
        "parsed as JSON when it parses, else taken as a string: "
        "rpcsvc call task.list status=completed limit=5",
    )
    call.add_argument("method")
    call.add_argument("params", nargs="*", metavar="key=value")
    submit = sub.add_parser(
        "submit",
        parents=[common],
        help="analyse a JSON Lines file of posts, following the task's progress",
        description="Uploads the posts (one JSON object with a 'text' a line) in batches, "
        "starts analyze_content, shows its progress and writes the result. Ctrl-C cancels.",
    )
    submit.add_argument("file", type=Path, help="JSON Lines, one post a line ('-': stdin)")
    submit.add_argument("--analysis", default="sentiment", help="comma-separated analyses")
    submit.add_argument("--out", type=Path, help="result file (default: standard output)")
    submit.add_argument("--priority", default="normal", help="low, normal, high or critical")
    submit.add_argument("--batch-size", type=int, default=2000, help="posts per upload call")
    submit.add_argument("--summary-only", action="store_true", help="leave per-post rows out")
    submit.add_argument("--no-progress", action="store_true", help="no progress bars")
    tasks = sub.add_parser("tasks", parents=[common], help="list tasks as a table, newest first")
    tasks.add_argument("--status", help="pending, running, completed, failed or cancelled")
    tasks.add_argument("--type", help="only tasks of this type")
    tasks.add_argument("--limit", type=int, default=20, help="rows to show (at most 1000)")
    tasks.add_argument("--cursor", help="next_cursor printed under the previous page")


def parse_params(words: Sequence[str]) -> dict[str, Any] | list[Any]:
    """``key=value`` words -> params by name; bare words -> params by position."""
    named: dict[str, Any] = {}
    positional: list[Any] = []
    for word in words:
        match = _NAMED_PARAM.fullmatch(word)
        if match:
            named[match.group(1)] = _value(match.group(2))
        else:
            positional.append(_value(word))
    if named and positional:
        raise ValueError("give params either all as key=value or all by position")
    return positional if positional else named


def _value(text: str) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return text


def run_client_command(args: argparse.Namespace) -> int:
    """Run ``call``/``submit``/``tasks``; the exit code (1 on an error, 130 on Ctrl-C)."""
    commands: dict[str, Callable[[RpcClient, argparse.Namespace], Awaitable[int]]] = {
        "call": _call,
        "submit": _submit,
        "tasks": _tasks,
    }
    command = commands[args.command]

    async def run() -> int:
        async with RpcClient(args.url, token=args.token) as rpc:
            return await command(rpc, args)

    try:
        return asyncio.run(run())
    except KeyboardInterrupt:
        return 130
    except (RpcsvcError, SubmitError, ValueError) as exc:
        _print_error(exc)
        return 1
    except (aiohttp.ClientError, OSError) as exc:
        print(f"rpcsvc: cannot reach {args.url}: {exc}", file=sys.stderr)
        return 1


def _print_error(exc: Exception) -> None:
    if isinstance(exc, HttpError):
        print(f"rpcsvc: {exc.message}", file=sys.stderr)
    elif isinstance(exc, RpcsvcError):
        print(f"rpcsvc: error {exc.code}: {exc.message}", file=sys.stderr)
        if exc.data is not None:
            print(orjson.dumps(exc.data).decode(), file=sys.stderr)
    else:
        print(f"rpcsvc: {exc}", file=sys.stderr)


async def _call(rpc: RpcClient, args: argparse.Namespace) -> int:
    params = parse_params(args.params)
    if isinstance(params, list):
        result = await rpc.call(args.method, *params)
    else:
        result = await rpc.call(args.method, **params)
    sys.stdout.buffer.write(orjson.dumps(result, option=orjson.OPT_INDENT_2) + b"\n")
    sys.stdout.flush()
    return 0


async def _submit(rpc: RpcClient, args: argparse.Namespace) -> int:
    source = read_posts(args.file, sys.stdin if str(args.file) == "-" else None)
    task = await submit(
        rpc,
        source,
        analysis_types=[a.strip() for a in args.analysis.split(",") if a.strip()],
        priority=args.priority,
        batch_size=max(1, args.batch_size),
        summary_only=args.summary_only,
        progress=not args.no_progress,
    )
    if task["status"] != "completed":
        error = task.get("error") or {}
        detail = f": {error.get('type')}: {error.get('message')}" if error else ""
        print(f"rpcsvc: task {task['task_id']} {task['status']}{detail}", file=sys.stderr)
        return 1
    write_result(task, args.out)
    where = f" -> {args.out}" if args.out else ""
    print(f"rpcsvc: task {task['task_id']} completed{where}", file=sys.stderr)
    return 0


async def _tasks(rpc: RpcClient, args: argparse.Namespace) -> int:
    filters = {"status": args.status, "type": args.type, "cursor": args.cursor}
    page = await rpc.list(limit=args.limit, **{k: v for k, v in filters.items() if v})
    print(format_task_table(page["tasks"]))
    if page["next_cursor"]:
        print(f"(more: --cursor {page['next_cursor']})")
    return 0


def format_task_table(tasks: Sequence[dict[str, Any]]) -> str:
    """Task summaries as an aligned plain-text table."""
    rows = [TASK_COLUMNS]
    for task in tasks:
        progress = task.get("progress")
        rows.append(
            (
                task["task_id"],
                task["type"],
                task["status"],
                task["priority"],
                f"{progress['done']}/{progress['total']}" if progress else "-",
                (task["created_at"] or "-").replace("T", " ")[:19],
                _duration(task),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(TASK_COLUMNS))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        for row in rows
    ]
    if not tasks:
        lines.append("(no tasks)")
    return "\n".join(line.rstrip() for line in lines)


def _duration(task: dict[str, Any]) -> str:
    if not task.get("started_at") or not task.get("finished_at"):
        return "-"
    seconds = (
        datetime.fromisoformat(task["finished_at"]) - datetime.fromisoformat(task["started_at"])
    ).total_seconds()
    return f"{seconds:.3f}s"


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    # `call` params may follow options (call M --url U k=v): argparse leaves those over.
    if extra and args.command == "call" and not any(word.startswith("--") for word in extra):
        args.params += extra
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if args.command == "serve":
        overrides = {
            f.name: getattr(args, f.name)
            for f in dataclasses.fields(Settings)
            if getattr(args, f.name) is not None
        }
        try:
            settings = Settings.from_env(**overrides)
        except ConfigError as exc:
            print(f"rpcsvc: bad setting: {exc}", file=sys.stderr)
            return 2
        serve(settings)
        return 0
    return run_client_command(args)


if __name__ == "__main__":
    sys.exit(main())
