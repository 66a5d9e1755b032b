"""The ``harmwatch`` command: one entry point, subcommands contributed by each stage.

Each stage keeps its own commands in a small ``cli`` module exposing
``register(subparsers)``; this file only lists those modules. Command modules must
import heavy libraries (torch, scrapy) inside the command function, not at import
time, so that ``harmwatch --help`` stays instant.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from harmwatch.settings import ConfigError

COMMAND_MODULES = [
    "services.cli",
    "services.demo",
    "harmwatch.commands",
    "consumers.cli",
    "consumers.deadletters",
    "classifiers.text.cli",
    "models.cli",
    "classifiers.media.cli",
    "classifiers.banks.cli",
    "crawlers.cli",
    "services.demo_site.cli",
    "review_ui.cli",
    "review_ui.evidence.cli",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="harmwatch",
        description="Watch public online spaces for harm to children.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        result = args.func(args)
    except ConfigError as exc:
        print(f"harmwatch: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
