"""``harmwatch hash FILE...``: print every hash of each image, one JSON object per line."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "hash",
        help="Hash image files (MD5/SHA-1/SHA-256, PDQ + variants, pHash, dHash).",
        description="Print one JSON line per file: its hashes, or why it was refused.",
    )
    parser.add_argument("files", nargs="+", type=Path, metavar="FILE")
    parser.set_defaults(func=_hash)


def _hash(args: argparse.Namespace) -> int:
    from classifiers.media import ImageRefused, hash_image

    refused = 0
    for path in args.files:
        record: dict[str, object] = {"file": str(path)}
        try:
            record.update(asdict(hash_image(path.read_bytes())))
        except ImageRefused as exc:
            refused += 1
            record.update(error=exc.reason, detail=exc.detail)
        except OSError as exc:
            refused += 1
            record.update(error="unreadable", detail=str(exc))
        print(json.dumps(record), flush=True)
    if refused:
        print(f"{refused} of {len(args.files)} file(s) not hashed", file=sys.stderr)
    return 1 if refused == len(args.files) else 0
