"""``rpcsvc`` on the command line: ``rpcsvc serve [--host] [--port] [--workers] ...``."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
from collections.abc import Sequence

from aiohttp import web

from .config import Settings
from .errors import ConfigError


def _serve_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
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
    return parser


def serve(settings: Settings) -> None:
    from .app import create_app

    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    web.run_app(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        print=lambda msg: logging.getLogger("rpcsvc").info(
            "listening on http://%s:%s (workers=%s)", settings.host, settings.port, settings.workers
        ),
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
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


if __name__ == "__main__":
    sys.exit(main())
