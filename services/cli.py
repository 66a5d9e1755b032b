"""``harmwatch services up|down|status|reset``: the local Kafka and Elasticsearch."""

from __future__ import annotations

import argparse
import shutil
import sys

from harmwatch.settings import get_settings


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "services", help="start, stop or inspect the local Kafka broker and Elasticsearch node"
    )
    parser.add_argument("action", choices=["up", "down", "status", "reset"])
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from services import manager

    settings = get_settings()
    try:
        if args.action == "up":
            print("Starting Kafka and Elasticsearch (data and logs under "
                  f"{settings.var_dir})")
            manager.up(settings)
            for line in manager.status(settings):
                print(line)
        elif args.action == "down":
            manager.down(settings)
            print("Stopped.")
        elif args.action == "status":
            lines = manager.status(settings)
            for line in lines:
                print(line)
            return 0 if all(" running " in line for line in lines) else 3
        elif args.action == "reset":
            manager.down(settings)
            layout = manager.Layout(settings.var_dir)
            for path in (layout.var / "kafka", layout.es_root):
                shutil.rmtree(path, ignore_errors=True)
            print("Stopped and removed Kafka and Elasticsearch data (downloads kept).")
    except manager.ServiceError as exc:
        print(f"harmwatch services {args.action}: {exc}", file=sys.stderr)
        return 1
    return 0
