"""Bank and entry metadata in SQLite, shared by the analyzer and the review UI.

One database file (``<banks_dir>/banks.sqlite3``) in WAL mode, so the UI can write while
analyzer processes read. Every write bumps a ``generation`` counter in the same
transaction; readers compare it before each batch (one indexed read) and reload only
what changed, which is how a confirmation in the UI reaches a running analyzer without
a restart or a rebuild.

Entries are never physically rewritten on disable: ``disabled``/``disabled_until`` are
checked when a match is resolved, so a disable takes effect on the very next lookup.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from classifiers.banks.signals import (
    ALGORITHMS,
    DEFAULT_PDQ_MIN_QUALITY,
    PERCEPTUAL,
    SIGNALS,
    normalise,
    normalise_crop_resistant,
)

BankKind = Literal["match", "allow"]
# Called after each import batch with (entries read so far, entries added so far).
Callback = Callable[[int, int], None]
CONFIRMED_BANK = "confirmed"

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT OR IGNORE INTO meta (key, value) VALUES ('generation', 0);
CREATE TABLE IF NOT EXISTS banks (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL CHECK (kind IN ('match', 'allow')),
    description TEXT NOT NULL DEFAULT '',
    list_version TEXT,
    thresholds TEXT NOT NULL,
    pdq_min_quality INTEGER NOT NULL,
    disabled INTEGER NOT NULL DEFAULT 0,
    disabled_until TEXT,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS entries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    bank_id INTEGER NOT NULL REFERENCES banks(id) ON DELETE CASCADE,
    md5 TEXT, sha1 TEXT, sha256 TEXT, pdq TEXT, phash TEXT,
    category TEXT,
    severity INTEGER,
    source_list TEXT,
    external_id TEXT,
    added_at TEXT NOT NULL,
    added_by TEXT NOT NULL,
    note TEXT,
    disabled INTEGER NOT NULL DEFAULT 0,
    disabled_until TEXT,
    identity INTEGER NOT NULL,
    crop_resistant TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS entries_identity ON entries (bank_id, identity);
CREATE INDEX IF NOT EXISTS entries_md5 ON entries (md5) WHERE md5 IS NOT NULL;
CREATE INDEX IF NOT EXISTS entries_sha1 ON entries (sha1) WHERE sha1 IS NOT NULL;
CREATE INDEX IF NOT EXISTS entries_sha256 ON entries (sha256) WHERE sha256 IS NOT NULL;
"""

# NCMEC categories (A = prepubescent, B = pubescent; 1 = sex act, 2 = lascivious
# exhibition) and Project VIC VICS categories, mapped to a priority: higher is worse.
SEVERITY_BY_CATEGORY = {
    "A1": 4, "A2": 3, "B1": 3, "B2": 2,
    "VICS-1": 4, "VICS-2": 2, "VICS-3": 2, "VICS-4": 0, "VICS-0": 0,
}
_ENTRY_COLUMNS = (
    "id", "bank_id", "md5", "sha1", "sha256", "pdq", "phash", "category", "severity",
    "source_list", "external_id", "added_at", "added_by", "note", "disabled", "disabled_until",
    "crop_resistant",
)


class BankError(ValueError):
    """A bank operation that cannot be done as asked (unknown bank, bad threshold...)."""


def _now() -> datetime:
    return datetime.now(UTC)


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    if moment.tzinfo is None:
        raise BankError("times must be timezone-aware (UTC)")
    return moment.astimezone(UTC).isoformat()


def _active(disabled: int, disabled_until: str | None, now: datetime) -> bool:
    """Enabled, or disabled only until a moment that has passed."""
    if not disabled:
        return True
    return disabled_until is not None and datetime.fromisoformat(disabled_until) <= now


@dataclass(frozen=True)
class Bank:
    id: int
    name: str
    kind: BankKind
    description: str
    list_version: str | None
    thresholds: dict[str, int]
    pdq_min_quality: int
    disabled: bool
    disabled_until: datetime | None
    created_at: datetime

    def active(self, now: datetime | None = None) -> bool:
        until = _iso(self.disabled_until)
        return _active(int(self.disabled), until, now or _now())

    def threshold(self, algorithm: str) -> int:
        return self.thresholds.get(algorithm, SIGNALS[algorithm].default_threshold)


@dataclass
class NewEntry:
    """An entry to add: at least one hash, plus what is known about the item."""

    md5: str | None = None
    sha1: str | None = None
    sha256: str | None = None
    pdq: str | None = None
    phash: str | None = None
    category: str | None = None
    severity: int | None = None
    source_list: str | None = None
    external_id: str | None = None
    note: str | None = None
    # Region hashes for finding cropped copies; only for images we hold (see signals.py).
    crop_resistant: str | None = None

    def normalised(self) -> NewEntry:
        """Validated copy with lowercase hex and a severity derived from the category."""
        values = {a: getattr(self, a) for a in ALGORITHMS}
        hashes = {a: normalise(a, v) for a, v in values.items() if v}
        if not hashes:
            raise BankError("an entry needs at least one hash")
        category = (self.category or "").strip().upper() or None
        severity = self.severity
        if severity is None and category is not None:
            severity = SEVERITY_BY_CATEGORY.get(category)
        return NewEntry(
            **{a: hashes.get(a) for a in ALGORITHMS},
            category=category,
            severity=severity,
            source_list=self.source_list,
            external_id=self.external_id,
            note=self.note,
            crop_resistant=normalise_crop_resistant(self.crop_resistant)
            if self.crop_resistant else None,
        )


@dataclass(frozen=True)
class Entry:
    id: int
    bank_id: int
    md5: str | None
    sha1: str | None
    sha256: str | None
    pdq: str | None
    phash: str | None
    category: str | None
    severity: int | None
    source_list: str | None
    external_id: str | None
    added_at: str
    added_by: str
    note: str | None
    disabled: int
    disabled_until: str | None
    crop_resistant: str | None = None

    def active(self, now: datetime | None = None) -> bool:
        return _active(self.disabled, self.disabled_until, now or _now())


@dataclass(frozen=True)
class ImportResult:
    added: int
    duplicates: int


class BankStore:
    """The narrow storage interface: banks, entries, and the change counter."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.path = self.directory / "banks.sqlite3"
        self._db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        # In WAL mode NORMAL still never corrupts the database; a power cut can lose the
        # last commits, which an import can redo. It makes bulk imports several times faster.
        self._db.execute("PRAGMA synchronous=NORMAL")
        # Hash keys arrive in random order: a small page cache makes every index insert a
        # disk read. 128 MB (an upper bound, allocated as used) keeps imports in memory.
        self._db.execute("PRAGMA cache_size=-131072")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.executescript(SCHEMA)
        _add_missing_columns(self._db)

    @classmethod
    def default(cls) -> BankStore:
        from harmwatch.settings import get_settings

        return cls(get_settings().resolved_banks_dir)

    def close(self) -> None:
        self._db.close()

    @property
    def index_dir(self) -> Path:
        return self.directory / "index"

    # -- change counter ---------------------------------------------------------------

    def generation(self) -> int:
        """Bumped by every write; cheap enough to read before each analyzer batch."""
        return int(self._db.execute("SELECT value FROM meta WHERE key='generation'").fetchone()[0])

    def _write(self) -> _Transaction:
        return _Transaction(self._db)

    # -- banks ------------------------------------------------------------------------

    def create_bank(
        self,
        name: str,
        kind: BankKind = "match",
        *,
        description: str = "",
        list_version: str | None = None,
        thresholds: dict[str, int] | None = None,
        pdq_min_quality: int = DEFAULT_PDQ_MIN_QUALITY,
    ) -> Bank:
        checked = _check_thresholds(thresholds or {})
        with self._write() as db:
            try:
                db.execute(
                    "INSERT INTO banks (name, kind, description, list_version, thresholds,"
                    " pdq_min_quality, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (name, kind, description, list_version, json.dumps(checked),
                     pdq_min_quality, _iso(_now())),
                )
            except sqlite3.IntegrityError as exc:
                raise BankError(f"bank {name!r} already exists") from exc
        return self.bank(name)

    def ensure_bank(self, name: str, kind: BankKind = "match", **options: object) -> Bank:
        try:
            return self.bank(name)
        except BankError:
            return self.create_bank(name, kind, **options)  # type: ignore[arg-type]

    def bank(self, name: str) -> Bank:
        row = self._db.execute("SELECT * FROM banks WHERE name = ?", (name,)).fetchone()
        if row is None:
            raise BankError(f"no bank named {name!r}")
        return _bank(row)

    def banks(self) -> list[Bank]:
        return [_bank(r) for r in self._db.execute("SELECT * FROM banks ORDER BY name")]

    def set_thresholds(
        self, name: str, thresholds: dict[str, int], pdq_min_quality: int | None = None
    ) -> Bank:
        bank = self.bank(name)
        merged = {**bank.thresholds, **_check_thresholds(thresholds)}
        quality = bank.pdq_min_quality if pdq_min_quality is None else pdq_min_quality
        with self._write() as db:
            db.execute(
                "UPDATE banks SET thresholds = ?, pdq_min_quality = ? WHERE id = ?",
                (json.dumps(merged), quality, bank.id),
            )
        return self.bank(name)

    def set_bank_disabled(
        self, name: str, disabled: bool, until: datetime | None = None
    ) -> Bank:
        bank = self.bank(name)
        with self._write() as db:
            db.execute(
                "UPDATE banks SET disabled = ?, disabled_until = ? WHERE id = ?",
                (int(disabled), _iso(until) if disabled else None, bank.id),
            )
        return self.bank(name)

    def entry_counts(self) -> dict[int, int]:
        rows = self._db.execute("SELECT bank_id, count(*) FROM entries GROUP BY bank_id")
        return {bank_id: count for bank_id, count in rows}

    # -- entries ----------------------------------------------------------------------

    def add_entries(
        self,
        bank: str,
        entries: Iterable[NewEntry],
        added_by: str,
        *,
        progress: Callback | None = None,
        batch_size: int = 50_000,
    ) -> ImportResult:
        """Add entries (idempotent: an entry already in the bank is counted, not repeated)."""
        bank_id = self.bank(bank).id
        added = seen = 0
        for batch in _batches(entries, batch_size):
            added_at = _iso(_now())
            rows = [_entry_row(bank_id, e.normalised(), added_by, added_at) for e in batch]
            with self._write() as db:
                before = db.total_changes
                db.executemany(
                    "INSERT OR IGNORE INTO entries (bank_id, md5, sha1, sha256, pdq, phash,"
                    " category, severity, source_list, external_id, added_at, added_by, note,"
                    " identity, crop_resistant) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?,"
                    " ?, ?)",
                    rows,
                )
                added += db.total_changes - before
            seen += len(rows)
            if progress:
                progress(seen, added)
        return ImportResult(added=added, duplicates=seen - added)

    def entries(self, bank: str | None = None) -> Iterator[Entry]:
        sql = f"SELECT {', '.join(_ENTRY_COLUMNS)} FROM entries"
        args: tuple[object, ...] = ()
        if bank is not None:
            sql += " WHERE bank_id = ?"
            args = (self.bank(bank).id,)
        for row in self._db.execute(sql + " ORDER BY id", args):
            yield Entry(*row)

    def entries_by_id(self, ids: Iterable[int]) -> dict[int, Entry]:
        wanted = sorted({int(i) for i in ids})
        found: dict[int, Entry] = {}
        for start in range(0, len(wanted), 900):
            chunk = wanted[start : start + 900]
            marks = ",".join("?" * len(chunk))
            sql = f"SELECT {', '.join(_ENTRY_COLUMNS)} FROM entries WHERE id IN ({marks})"
            for row in self._db.execute(sql, chunk):
                found[row[0]] = Entry(*row)
        return found

    def entries_with_hash(self, algorithm: str, value: str) -> list[Entry]:
        """Exact lookup of a cryptographic hash (an SQLite index seek)."""
        if algorithm in PERCEPTUAL:
            raise BankError("perceptual hashes are looked up through the index")
        sql = f"SELECT {', '.join(_ENTRY_COLUMNS)} FROM entries WHERE {algorithm} = ?"
        return [Entry(*row) for row in self._db.execute(sql, (value,))]

    def perceptual_since(
        self, algorithm: str, after_id: int, upto_id: int
    ) -> Iterator[tuple[int, str]]:
        """(id, hash) of entries in ``after_id < id <= upto_id`` carrying this hash."""
        if algorithm not in PERCEPTUAL:
            raise BankError(f"{algorithm} is not a perceptual hash")
        sql = (f"SELECT id, {algorithm} FROM entries WHERE id > ? AND id <= ?"
               f" AND {algorithm} IS NOT NULL ORDER BY id")
        yield from self._db.execute(sql, (after_id, upto_id))

    def crop_resistant_entries(self) -> list[tuple[int, str, str]]:
        """(id, pHash, crop-resistant hash) of every entry that has both (few: confirmed items)."""
        return self._db.execute(
            "SELECT id, phash, crop_resistant FROM entries"
            " WHERE crop_resistant IS NOT NULL AND phash IS NOT NULL ORDER BY id").fetchall()

    def live_ids(self) -> list[int]:
        return [r[0] for r in self._db.execute("SELECT id FROM entries")]

    def max_entry_id(self) -> int:
        return int(self._db.execute("SELECT ifnull(max(id), 0) FROM entries").fetchone()[0])

    def set_entries_disabled(
        self, bank: str, ids: Iterable[int], disabled: bool, until: datetime | None = None
    ) -> int:
        """Disable (or re-enable) entries of one bank; returns how many were found."""
        bank_id = self.bank(bank).id
        until_text = _iso(until) if disabled else None
        with self._write() as db:
            before = db.total_changes
            db.executemany(
                "UPDATE entries SET disabled = ?, disabled_until = ? WHERE id = ? AND bank_id = ?",
                [(int(disabled), until_text, int(i), bank_id) for i in ids],
            )
            return db.total_changes - before

    def remove_entries(self, ids: Iterable[int]) -> int:
        with self._write() as db:
            before = db.total_changes
            db.executemany("DELETE FROM entries WHERE id = ?", [(int(i),) for i in ids])
            return db.total_changes - before



class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT with the generation bump inside the same transaction."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> sqlite3.Connection:
        self._db.execute("BEGIN IMMEDIATE")
        self._db.execute("UPDATE meta SET value = value + 1 WHERE key = 'generation'")
        return self._db

    def __exit__(self, exc_type: type[BaseException] | None, *rest: object) -> None:
        self._db.execute("ROLLBACK" if exc_type else "COMMIT")


def _check_thresholds(thresholds: dict[str, int]) -> dict[str, int]:
    checked = {}
    for algorithm, value in thresholds.items():
        signal = SIGNALS.get(algorithm)
        if signal is None or not signal.perceptual:
            raise BankError(f"thresholds apply to perceptual hashes only, not {algorithm!r}")
        if not 0 <= int(value) < signal.bits // 2:
            raise BankError(f"{algorithm} threshold {value} outside 0..{signal.bits // 2 - 1}")
        checked[algorithm] = int(value)
    return checked


def _bank(row: tuple) -> Bank:
    (id_, name, kind, description, list_version, thresholds, quality, disabled, until,
     created) = row
    return Bank(
        id=id_, name=name, kind=kind, description=description, list_version=list_version,
        thresholds=json.loads(thresholds), pdq_min_quality=quality, disabled=bool(disabled),
        disabled_until=datetime.fromisoformat(until) if until else None,
        created_at=datetime.fromisoformat(created),
    )


def _entry_row(bank_id: int, e: NewEntry, added_by: str, added_at: str | None) -> tuple:
    return (bank_id, e.md5, e.sha1, e.sha256, e.pdq, e.phash, e.category, e.severity,
            e.source_list, e.external_id, added_at, added_by, e.note, _identity(e),
            e.crop_resistant)


def _add_missing_columns(db: sqlite3.Connection) -> None:
    """Columns added after a store was created (the schema only ever gains nullable ones)."""
    present = {row[1] for row in db.execute("PRAGMA table_info(entries)")}
    if "crop_resistant" not in present:
        db.execute("ALTER TABLE entries ADD COLUMN crop_resistant TEXT")


def _identity(e: NewEntry) -> int:
    """64-bit digest of an entry's hashes: what makes re-importing a list idempotent.

    One integer column with a unique index is far cheaper to maintain on bulk imports
    than a unique index over five nullable text columns.
    """
    key = "|".join(getattr(e, a) or "" for a in ALGORITHMS).encode()
    return int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "big", signed=True)


def _batches(items: Iterable[NewEntry], size: int) -> Iterator[list[NewEntry]]:
    batch: list[NewEntry] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch
