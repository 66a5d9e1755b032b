"""Reading and writing hash lists: CSV, NCMEC-style CSV, Project VIC VICS 2.0, plain text.

Readers yield :class:`NewEntry` one at a time so that a list of millions of hashes is
streamed into the store in batches, never held whole (VICS JSON too: its media array is
parsed item by item). The formats are described, with examples, in
docs/formats/hash-lists.md.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Literal

import ijson

from classifiers.banks.signals import SIGNALS, InvalidHash, normalise
from classifiers.banks.store import BankKind, BankStore, Callback, Entry, ImportResult, NewEntry
from harmwatch.csvcells import SafeWriter, restore_cell

Format = Literal["csv", "ncmec", "vics", "text"]
FORMATS: tuple[Format, ...] = ("csv", "ncmec", "vics", "text")

VICS_CONTEXT = (
    "http://github.com/VICSDATAMODEL/ProjectVic/DataModels/2.0.xml/Default/$metadata#Media"
)
NCMEC_CATEGORIES = ("A1", "A2", "B1", "B2")

# Header spellings seen in the wild, folded (lowercase, no space/_/-) to our field names.
_COLUMN_ALIASES = {
    "md5": "md5", "md5hash": "md5", "hashmd5": "md5",
    "sha1": "sha1", "sha1hash": "sha1", "hashsha1": "sha1",
    "sha256": "sha256", "sha256hash": "sha256", "hashsha256": "sha256",
    "pdq": "pdq", "pdqhash": "pdq",
    "phash": "phash",
    "cropresistant": "crop_resistant",
    "category": "category", "classification": "category", "ncmeccategory": "category",
    "severity": "severity",
    "source": "source_list", "sourcelist": "source_list",
    "id": "external_id", "externalid": "external_id", "mediaid": "external_id",
    "note": "note", "notes": "note", "comment": "note", "comments": "note",
}
CSV_COLUMNS = (
    "md5", "sha1", "sha256", "pdq", "phash", "crop_resistant", "category", "severity", "source_list",
    "external_id", "added_at", "added_by", "note", "disabled", "disabled_until",
)
NCMEC_COLUMNS = ("md5", "sha1", "sha256", "pdq", "category")


class FormatError(ValueError):
    """The file is not in the format it was read as; the message says where."""


def detect_format(filename: str) -> Format:
    lowered = filename.lower()
    if lowered.endswith(".json"):
        return "vics"
    if lowered.endswith(".csv"):
        return "csv"
    return "text"


def import_file(
    store: BankStore,
    bank: str,
    path: Path,
    fmt: Format,
    added_by: str,
    *,
    kind: BankKind = "match",
    algorithm: str | None = None,
    source_list: str | None = None,
    bank_options: dict[str, object] | None = None,
    on_checked: Callable[[int], None] | None = None,
    progress: Callback | None = None,
    batch_size: int = 50_000,
) -> ImportResult:
    """Import a hash list all or nothing: the whole file is read once to check it first.

    A list of millions of hashes with a typo on its last line would otherwise be half
    imported, leaving a bank that looks complete and is not. Checking costs a second read
    of the file, far less than the writes. The bank is created only once the file is
    known to be good; a failure while writing (disk full, process killed) leaves the
    entries written so far, and running the same import again completes it, as entries
    already present are skipped.
    """
    checked = 0
    for checked, _ in enumerate(_entries_of(path, fmt, algorithm, source_list), start=1):
        if on_checked and checked % batch_size == 0:
            on_checked(checked)
    if on_checked:
        on_checked(checked)
    store.ensure_bank(bank, kind, **(bank_options or {}))
    return store.add_entries(bank, _entries_of(path, fmt, algorithm, source_list), added_by,
                             progress=progress, batch_size=batch_size)


def _entries_of(path: Path, fmt: Format, algorithm: str | None,
                source_list: str | None) -> Iterator[NewEntry]:
    with open_list(path, fmt) as fp:
        yield from read_entries(fp, fmt, algorithm=algorithm, source_list=source_list)


@contextmanager
def open_list(path: Path, fmt: Format) -> Iterator[IO[str] | IO[bytes]]:
    """The file opened as its reader wants it: VICS JSON as bytes, the others as text."""
    if fmt == "vics":
        with path.open("rb") as fp:
            yield fp
    else:
        with path.open(encoding="utf-8-sig", newline="") as fp:
            yield fp


def read_entries(
    fp: IO[str] | IO[bytes], fmt: Format, *, algorithm: str | None = None,
    source_list: str | None = None,
) -> Iterator[NewEntry]:
    """Entries of a list in ``fmt``; ``source_list`` is stamped on entries lacking one.

    VICS JSON is read from a binary file; the other formats from a text file.
    """
    if fmt in ("csv", "ncmec"):
        entries = read_csv(fp, require_category=fmt == "ncmec")  # type: ignore[arg-type]
    elif fmt == "vics":
        entries = read_vics(fp)  # type: ignore[arg-type]
    else:
        entries = read_text(fp, algorithm=algorithm)  # type: ignore[arg-type]
    try:
        for entry in entries:
            if source_list and not entry.source_list:
                entry.source_list = source_list
            yield entry
    except UnicodeDecodeError as exc:  # text formats are decoded while read
        raise FormatError(f"not UTF-8 text (byte {exc.start} of a read block): {exc.reason}") from exc


def read_csv(fp: IO[str], *, require_category: bool = False) -> Iterator[NewEntry]:
    """Header-driven CSV: any of md5/sha1/sha256/pdq/phash plus optional metadata."""
    reader = csv.reader(_skip_comments(fp))
    header = next(reader, None)
    if header is None:
        return
    fields = [_COLUMN_ALIASES.get(_fold(h)) for h in header]
    if not any(f in SIGNALS for f in fields):
        raise FormatError(f"CSV header {header!r} names no hash column (md5, sha1, ...)")
    if require_category and "category" not in fields:
        raise FormatError("NCMEC-style CSV needs a category column (A1, A2, B1, B2)")
    for line_no, row in enumerate(reader, start=2):
        values = {f: restore_cell(v.strip()) for f, v in zip(fields, row, strict=False)
                  if f and v.strip()}
        if not any(k in SIGNALS for k in values):
            continue
        if require_category and values.get("category", "").upper() not in NCMEC_CATEGORIES:
            raise FormatError(f"line {line_no}: category {values.get('category')!r} is not "
                              f"one of {NCMEC_CATEGORIES}")
        severity = values.pop("severity", None)
        try:
            entry = _checked(NewEntry(**values, severity=int(severity) if severity else None))
        except ValueError as exc:
            raise FormatError(f"line {line_no}: {exc}") from exc
        yield entry


def read_vics(fp: IO[bytes]) -> Iterator[NewEntry]:
    """Project VIC VICS 2.0 JSON: ``{"@odata.context": ..., "value": [Media...]}``.

    Older exports name the array ``Media``; both are accepted. Categories become
    ``VICS-<n>``. ``SHA256`` and ``PDQ`` keys are read when a tool adds them. The array is
    parsed one media item at a time (ijson), so a case export of millions of items never
    sits in memory whole.
    """
    opened = {"array": False}
    try:
        for position, media in enumerate(ijson.items(_media_events(fp, opened), "value.item")):
            if not isinstance(media, dict):
                raise FormatError(f"Media[{position}]: not a JSON object")
            entry = _vics_entry(media, position)
            if entry is not None:
                yield entry
    except ijson.JSONError as exc:
        raise FormatError(f"not JSON: {exc}") from exc
    if not opened["array"]:
        raise FormatError("VICS JSON needs a 'value' (or 'Media') array of media items")


def _media_events(fp: IO[bytes], opened: dict[str, bool]) -> Iterator[tuple[str, str, object]]:
    """ijson's parse events with an older export's ``Media`` array renamed ``value``."""
    if fp.read(3) != b"\xef\xbb\xbf":  # a byte-order mark, as Windows tools write
        fp.seek(0)
    for prefix, event, value in ijson.parse(fp, use_float=True):
        if prefix == "Media" or prefix.startswith("Media."):
            prefix = "value" + prefix.removeprefix("Media")
        if prefix == "value" and event == "start_array":
            opened["array"] = True
        yield prefix, event, value


def _vics_entry(media: dict, position: int) -> NewEntry | None:
    """One media item as an entry; ``None`` for an item with none of the hashes we match."""
    hashes = {a: media.get(k) for a, k in
              (("md5", "MD5"), ("sha1", "SHA1"), ("sha256", "SHA256"), ("pdq", "PDQ"))}
    if not any(hashes.values()):
        return None
    for key in ("MD5", "SHA1", "SHA256", "PDQ", "Comments"):
        if media.get(key) is not None and not isinstance(media[key], str):
            raise FormatError(f"Media[{position}]: {key} must be a string, "
                              f"not {type(media[key]).__name__}")
    category = media.get("Category")
    media_id = media.get("MediaID")
    try:
        return _checked(NewEntry(
            **{a: v for a, v in hashes.items() if v},
            category=f"VICS-{int(category)}" if category is not None else None,
            external_id=str(media_id) if media_id is not None else None,
            note=media.get("Comments") or None,
        ))
    except (TypeError, ValueError) as exc:
        raise FormatError(f"Media[{position}]: {exc}") from exc


def read_text(fp: IO[str], *, algorithm: str | None = None) -> Iterator[NewEntry]:
    """One hash per line; ``#`` comments and anything after a comma or space ignored.

    The algorithm is told by length (32 md5, 40 sha1, 16 phash) except for 64 hex
    digits, which may be SHA-256 or PDQ: then ``algorithm`` must say which.
    """
    by_length = {32: "md5", 40: "sha1", 16: "phash"}
    for line_no, line in enumerate(fp, start=1):
        token = line.split("#", 1)[0].replace(",", " ").split()
        if not token:
            continue
        value = token[0]
        name = algorithm or by_length.get(len(value.removeprefix("0x")))
        if name is None:
            raise FormatError(f"line {line_no}: cannot tell the algorithm of {value!r} "
                              "(64 hex digits: pass the algorithm, sha256 or pdq)")
        try:
            yield NewEntry(**{name: normalise(name, value)})
        except InvalidHash as exc:
            raise FormatError(f"line {line_no}: {exc}") from exc


def _checked(entry: NewEntry) -> NewEntry:
    """The entry as read, once it is known to be valid, so a bad line is reported where it is."""
    entry.normalised()
    return entry


def write_entries(entries: Iterable[Entry], fp: IO[str], fmt: Format, *,
                  algorithm: str | None = None) -> int:
    """Write entries in ``fmt``; returns how many were written (some formats skip some)."""
    if fmt == "csv":
        return _write_rows(entries, fp, CSV_COLUMNS)
    if fmt == "ncmec":
        return _write_rows(entries, fp, NCMEC_COLUMNS)
    if fmt == "vics":
        return write_vics(entries, fp)
    if algorithm is None:
        raise FormatError("plain text holds one algorithm: say which (md5, sha1, ... pdq)")
    return write_text(entries, fp, algorithm)


def _write_rows(entries: Iterable[Entry], fp: IO[str], columns: tuple[str, ...]) -> int:
    writer = SafeWriter(fp, lineterminator="\n")
    writer.writerow(columns)
    count = 0
    for entry in entries:
        writer.writerow(["" if getattr(entry, c) is None else getattr(entry, c) for c in columns])
        count += 1
    return count


def write_vics(entries: Iterable[Entry], fp: IO[str]) -> int:
    """VICS 2.0 media list; entries with neither MD5 nor SHA-1 cannot be expressed in it.

    PDQ and SHA-256 are written as extra ``PDQ``/``SHA256`` keys, which VICS readers
    that do not know them ignore and :func:`read_vics` reads back.
    """
    fp.write(f'{{"@odata.context": {json.dumps(VICS_CONTEXT)},\n "value": [')
    count = 0
    for entry in entries:
        if not (entry.md5 or entry.sha1):
            continue
        count += 1
        item: dict[str, object] = {"MediaID": count, "Category": _vics_category(entry)}
        for key, value in (("MD5", entry.md5), ("SHA1", entry.sha1), ("SHA256", entry.sha256),
                           ("PDQ", entry.pdq)):
            if value:
                item[key] = value.upper() if key in ("MD5", "SHA1") else value
        if entry.note:
            item["Comments"] = entry.note
        fp.write(("\n  " if count == 1 else ",\n  ") + json.dumps(item, ensure_ascii=False))
    fp.write("\n ]\n}\n")
    return count


def write_text(entries: Iterable[Entry], fp: IO[str], algorithm: str) -> int:
    count = 0
    for entry in entries:
        value = getattr(entry, algorithm)
        if value:
            fp.write(value + "\n")
            count += 1
    return count


def _vics_category(entry: Entry) -> int:
    """VICS category number: kept from a VICS import; NCMEC A/B categories are CSAM (1)."""
    category = entry.category or ""
    if category.startswith("VICS-"):
        return int(category.removeprefix("VICS-"))
    return 1 if category in NCMEC_CATEGORIES else 0


def _fold(header: str) -> str:
    return "".join(ch for ch in header.strip().lower() if ch not in " _-")


def _skip_comments(fp: IO[str]) -> Iterator[str]:
    return (line for line in fp if not line.startswith("#"))
