"""``harmwatch banks import|export|list|disable|reindex`` and ``harmwatch match FILE...``."""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

# Both constant-only modules: importing them keeps `harmwatch --help` instant.
from classifiers.banks.formats import FORMATS
from classifiers.banks.signals import ALGORITHMS

PROGRESS_EVERY = 50_000  # entries per import transaction, and per progress line


def register(subparsers: argparse._SubParsersAction) -> None:
    _register_match(subparsers)
    banks = subparsers.add_parser("banks", help="Manage hash banks (lists of known material).")
    commands = banks.add_subparsers(dest="banks_command", metavar="ACTION", required=True)
    _register_import(commands)
    _register_export(commands)
    _register_list(commands)
    _register_disable(commands)
    _register_reindex(commands)


def _register_match(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "match", help="Hash image files and match them against the banks.",
        description="Print one JSON line per file with its matches (allow lists applied).",
    )
    parser.add_argument("files", nargs="+", type=Path, metavar="FILE")
    parser.set_defaults(func=_match)


def _register_import(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("import", help="Import a hash list into a bank.")
    parser.add_argument("bank", help="Bank name; created when it does not exist.")
    parser.add_argument("file", type=Path)
    parser.add_argument("--format", choices=FORMATS,
                        help="Default: by extension (.csv csv, .json vics, else text).")
    parser.add_argument("--algorithm", choices=ALGORITHMS,
                        help="For plain text lists of 64-hex-digit hashes (sha256 or pdq).")
    parser.add_argument("--kind", choices=("match", "allow"), default="match",
                        help="For a new bank: 'allow' makes it an allow list.")
    parser.add_argument("--source-list", help="Source list name stamped on entries.")
    parser.add_argument("--list-version", help="For a new bank: the list's version.")
    parser.add_argument("--pdq-threshold", type=int, help="For a new bank (default 31).")
    parser.add_argument("--phash-threshold", type=int, help="For a new bank (default 8).")
    parser.add_argument("--added-by", default="cli", help="Who is importing (audit).")
    parser.set_defaults(func=_import)


def _register_export(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("export", help="Export a bank's entries.")
    parser.add_argument("bank")
    parser.add_argument("file", type=Path, help="Output file, or - for stdout.")
    parser.add_argument("--format", choices=FORMATS, default="csv")
    parser.add_argument("--algorithm", choices=ALGORITHMS,
                        help="Which hash a plain text export holds.")
    parser.set_defaults(func=_export)


def _register_list(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("list", help="List banks with sizes, kinds and thresholds.")
    parser.add_argument("--json", action="store_true", help="Machine-readable output.")
    parser.set_defaults(func=_list)


def _register_disable(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "disable", help="Disable a bank or some of its entries (optionally until a time).")
    parser.add_argument("bank")
    parser.add_argument("--entry", type=int, action="append", default=[],
                        help="Entry id (repeatable); default: the whole bank.")
    parser.add_argument("--until", type=_utc_time,
                        help="ISO-8601 time (UTC if no offset) when it re-enables itself.")
    parser.add_argument("--enable", action="store_true", help="Re-enable instead.")
    parser.set_defaults(func=_disable)


def _register_reindex(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "reindex", help="Rebuild and save the PDQ and pHash matching indexes from the banks.",
        description="Needed only after an upgrade that changes the index layout (the "
                    "analyzer logs when it is) or to drop removed entries at once; imports "
                    "and the analyzer otherwise keep the index current.")
    parser.set_defaults(func=_reindex)


def _utc_time(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _match(args: argparse.Namespace) -> int:
    from classifiers.banks.matcher import Matcher
    from classifiers.media.cli import batch_status, report_bad

    matcher, bad = Matcher(), 0
    for path in args.files:
        hashes, error = _match_hashes(path)
        if error is not None:
            bad += report_bad("match", path, *error)
        result = matcher.match_many([hashes])[0]
        print(json.dumps({
            "file": str(path),
            "error": error[0] if error else None,
            "matches": [m.model_dump() for m in result.matches],
            "suppressed": [m.model_dump() for m in result.suppressed],
            "allowed_by": [m.model_dump() for m in result.allowed_by],
        }), flush=True)
    return batch_status("match", bad, len(args.files))


def _match_hashes(path: Path) -> tuple[object, tuple[str, str] | None]:
    """The file's hashes and, if it was not fully hashed, (reason, detail).

    A refused image keeps its byte hashes: a bank may list the exact file.
    """
    from classifiers.media.hashing import ImageRefused, crypto_hashes, hash_image
    from harmwatch.contract import MediaHashes

    try:
        data = path.read_bytes()
    except OSError as exc:
        return MediaHashes(), ("unreadable", exc.strerror or str(exc))
    try:
        return hash_image(data), None
    except ImageRefused as exc:
        c = crypto_hashes(data) if data else None
        hashes = MediaHashes(md5=c.md5, sha1=c.sha1, sha256=c.sha256) if c else MediaHashes()
        return hashes, (exc.reason, exc.detail)


def _import(args: argparse.Namespace) -> int:
    from classifiers.banks import BankStore
    from classifiers.banks.formats import FormatError, detect_format, import_file
    from classifiers.banks.matcher import Matcher
    from classifiers.banks.store import BankError

    store = BankStore.default()
    fmt = args.format or detect_format(args.file.name)
    thresholds = {k: v for k, v in (("pdq", args.pdq_threshold),
                                    ("phash", args.phash_threshold)) if v is not None}
    started = datetime.now(UTC)

    def rate(count: int) -> str:
        return f"{count / max((datetime.now(UTC) - started).total_seconds(), 1e-6):,.0f}/s"

    def checked(count: int) -> None:
        print(f"  {count:,} checked ({rate(count)})", file=sys.stderr, flush=True)

    def progress(seen: int, added: int) -> None:
        print(f"  {seen:,} read, {added:,} added ({rate(seen)})", file=sys.stderr, flush=True)

    try:
        result = import_file(
            store, args.bank, args.file, fmt, args.added_by, kind=args.kind,
            algorithm=args.algorithm, source_list=args.source_list or args.file.name,
            bank_options={"list_version": args.list_version, "thresholds": thresholds},
            on_checked=checked, progress=progress, batch_size=PROGRESS_EVERY,
        )
    except FormatError as exc:
        print(f"harmwatch banks import: {args.file}: {exc}. Nothing was imported; correct the "
              f"file (or pick the right --format/--algorithm) and run the import again.",
              file=sys.stderr)
        return 1
    except (BankError, OSError) as exc:
        print(f"harmwatch banks import: {exc}. Entries already written stay; running the same "
              f"import again adds only the rest.", file=sys.stderr)
        return 1
    matcher = Matcher(store)
    matcher.refresh()  # rebuilds and saves the index when the import was large
    sizes = matcher.index_sizes()
    print(f"{args.bank}: {result.added:,} added, {result.duplicates:,} already present "
          f"(index: {sizes['pdq']:,} PDQ, {sizes['phash']:,} pHash)")
    return 0


def _export(args: argparse.Namespace) -> int:
    from classifiers.banks import BankStore
    from classifiers.banks.formats import FormatError, write_entries

    store = BankStore.default()
    out = sys.stdout if str(args.file) == "-" else args.file.open("w", encoding="utf-8",
                                                                   newline="")
    try:
        count = write_entries(store.entries(args.bank), out, args.format,
                              algorithm=args.algorithm)
    except FormatError as exc:
        print(f"harmwatch banks export: {exc}", file=sys.stderr)
        return 1
    finally:
        if out is not sys.stdout:
            out.close()
    print(f"{count:,} entries written", file=sys.stderr)
    return 0


def _list(args: argparse.Namespace) -> int:
    from classifiers.banks import BankStore

    store = BankStore.default()
    counts = store.entry_counts()
    rows = [{
        "name": b.name, "kind": b.kind, "entries": counts.get(b.id, 0),
        "active": b.active(), "disabled_until": b.disabled_until.isoformat()
        if b.disabled_until else None,
        "pdq_threshold": b.threshold("pdq"), "phash_threshold": b.threshold("phash"),
        "pdq_min_quality": b.pdq_min_quality, "list_version": b.list_version,
    } for b in store.banks()]
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    print(f"{'bank':<24} {'kind':<6} {'entries':>10} {'state':<10} pdq<= q>= phash<=")
    for r in rows:
        state = "active" if r["active"] else "disabled"
        print(f"{r['name']:<24} {r['kind']:<6} {r['entries']:>10,} {state:<10} "
              f"{r['pdq_threshold']:>5} {r['pdq_min_quality']:>3} {r['phash_threshold']:>7}")
    return 0


def _disable(args: argparse.Namespace) -> int:
    from classifiers.banks import BankStore
    from classifiers.banks.store import BankError

    store = BankStore.default()
    try:
        if args.entry:
            count = store.set_entries_disabled(args.bank, args.entry, not args.enable,
                                               args.until)
            print(f"{count} entr{'y' if count == 1 else 'ies'} "
                  f"{'enabled' if args.enable else 'disabled'}")
        else:
            bank = store.set_bank_disabled(args.bank, not args.enable, args.until)
            print(f"{bank.name}: {'active' if bank.active() else 'disabled'}"
                  + (f" until {bank.disabled_until.isoformat()}" if bank.disabled_until else ""))
    except BankError as exc:
        print(f"harmwatch banks disable: {exc}", file=sys.stderr)
        return 1
    return 0


def _reindex(args: argparse.Namespace) -> int:
    from classifiers.banks.matcher import Matcher

    started = time.monotonic()
    sizes = Matcher().reindex()
    print(f"index rebuilt in {time.monotonic() - started:.1f} s: {sizes['pdq']:,} PDQ, "
          f"{sizes['phash']:,} pHash")
    return 0
