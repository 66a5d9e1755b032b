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
    from classifiers.media.hashing import ImageRefused, hash_image

    bad = 0
    for path in args.files:
        record: dict[str, object] = {"file": str(path)}
        try:
            record.update(asdict(hash_image(path.read_bytes())))
        except ImageRefused as exc:
            bad += report_bad("hash", path, exc.reason, exc.detail)
            record.update(error=exc.reason, detail=exc.detail)
        except OSError as exc:
            bad += report_bad("hash", path, "unreadable", exc.strerror or str(exc))
            record.update(error="unreadable", detail=str(exc))
        print(json.dumps(record), flush=True)
    return batch_status("hash", bad, len(args.files))


def report_bad(command: str, path: Path, reason: str, detail: str) -> int:
    """One stderr line for a file that was not hashed (missing, a directory, refused); 1.

    ``harmwatch hash`` and ``harmwatch match`` share it so their errors read alike.
    """
    print(f"harmwatch {command}: {path}: {reason}: {detail}", file=sys.stderr, flush=True)
    return 1


def batch_status(command: str, bad: int, total: int) -> int:
    """The exit status of a batch (README): 0 when every file was hashed, else 1 — after
    the rest were processed, with a count on stderr, so a script cannot miss a bad file."""
    if bad:
        print(f"harmwatch {command}: {bad} of {total} file(s) not hashed", file=sys.stderr)
    return 1 if bad else 0
