"""Match image hashes against every active bank, with allow lists applied.

The analyzer keeps one :class:`Matcher` per process and calls :meth:`Matcher.match_many`
per batch. Before each batch the matcher reads the store's change counter; only when it
moved does it reload bank settings and pull entries added since (into the index delta),
so the UI's writes reach the analyzer within one batch and without a rebuild.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path

import numpy as np

from classifiers.banks.index import HammingIndex, Hits, hex_to_bytes
from classifiers.banks.signals import (
    CROP_RESISTANT,
    CROP_RESISTANT_MIN_REGIONS,
    CROP_RESISTANT_SHORTLIST,
    PERCEPTUAL,
    SIGNALS,
    crop_resistant_regions,
)
from classifiers.banks.store import Bank, BankStore, Entry
from classifiers.media.hashing import ImageHashes
from harmwatch.contract import HashMatch, MediaHashes

CRYPTO = ("md5", "sha1", "sha256")
# Entries added since the last build are brute-forced; past this many, rebuild.
DEFAULT_DELTA_LIMIT = 200_000
# Computes an image's crop-resistant hash on demand (slow, so only when a shortlist needs it).
CropResistant = Callable[[], str | None]


@dataclass
class MatchResult:
    """Matches of one media item: what counts, and what an allow list suppressed."""

    matches: list[HashMatch] = field(default_factory=list)
    suppressed: list[HashMatch] = field(default_factory=list)
    allowed_by: list[HashMatch] = field(default_factory=list)


@dataclass
class _Query:
    """The hashes of one item, flattened: all frames, and PDQ's eight variants each."""

    sha256: str | None
    crypto: dict[str, str]
    pdq: list[tuple[str, int]]  # (hash, quality)
    phash: list[str]

    @classmethod
    def of(cls, item: ImageHashes | MediaHashes) -> _Query:
        if isinstance(item, ImageHashes):
            c = item.crypto
            pdq = [(v, f.pdq_quality) for f in item.frames for v in f.pdq_variants]
            return cls(c.sha256, {"md5": c.md5, "sha1": c.sha1, "sha256": c.sha256}, pdq,
                       [f.phash for f in item.frames])
        crypto = {a: getattr(item, a) for a in CRYPTO if getattr(item, a)}
        pdq = [(item.pdq, item.pdq_quality or 0)] if item.pdq else []
        return cls(item.sha256, crypto, pdq, [item.phash] if item.phash else [])


class Matcher:
    """Exact and Hamming-radius matching over the banks of one :class:`BankStore`.

    Keep one per process (or per thread: it owns the store's SQLite connection). Start-up
    maps the saved index files, so it is quick even for millions of entries.
    """

    def __init__(self, store: BankStore | None = None, *,
                 delta_limit: int = DEFAULT_DELTA_LIMIT) -> None:
        self.store = store or BankStore.default()
        self.delta_limit = delta_limit
        self._generation = -1
        self._banks: dict[int, Bank] = {}
        self._indexes: dict[str, HammingIndex] = {}
        self._index_versions: dict[str, str] = {}
        self._cropped = _CropResistantEntries.empty()

    # -- freshness --------------------------------------------------------------------

    def refresh(self) -> None:
        """Pick up other processes' changes; a no-op (one SQLite read) when none."""
        generation = self.store.generation()
        if generation == self._generation:
            return
        self._banks = {b.id: b for b in self.store.banks()}
        for algorithm in PERCEPTUAL:
            self._refresh_index(algorithm)
        self._cropped = _CropResistantEntries.load(self.store)
        self._generation = generation

    def _refresh_index(self, algorithm: str) -> None:
        directory = self.store.index_dir / algorithm
        version = _pointer_text(directory)
        index = self._indexes.get(algorithm)
        if index is None or version != self._index_versions.get(algorithm):
            index = HammingIndex.load(directory, SIGNALS[algorithm].bits)
            self._index_versions[algorithm] = version
        # Ids are handed out in commit order, so everything committed later lies above upto.
        upto = self.store.max_entry_id()
        rows = self.store.perceptual_since(algorithm, index.max_id, upto)
        while chunk := list(islice(rows, 100_000)):  # streamed: an import may add millions
            ids = np.array([r[0] for r in chunk], dtype=np.int64)
            index.add(hex_to_bytes([r[1] for r in chunk], index.bits), ids)
        index.max_id = max(index.max_id, upto)
        if len(index.delta) > self.delta_limit:
            index = self._compact(algorithm, index)
        self._indexes[algorithm] = index

    def _compact(self, algorithm: str, index: HammingIndex) -> HammingIndex:
        """Merge the delta, drop removed entries, save for the other processes."""
        live = np.array(self.store.live_ids(), dtype=np.int64)
        compacted = index.compacted(live)
        directory = self.store.index_dir / algorithm
        compacted.save(directory)
        self._index_versions[algorithm] = _pointer_text(directory)
        return compacted

    def index_sizes(self) -> dict[str, int]:
        """Entries searchable per perceptual algorithm (built part plus delta)."""
        return {algorithm: len(index) for algorithm, index in self._indexes.items()}

    def reindex(self) -> dict[str, int]:
        """Rebuild every perceptual index from the store now (after a large import)."""
        self._generation = -1
        self.refresh()
        sizes = {}
        for algorithm in PERCEPTUAL:
            self._indexes[algorithm] = self._compact(algorithm, self._indexes[algorithm])
            sizes[algorithm] = len(self._indexes[algorithm])
        return sizes

    # -- matching ---------------------------------------------------------------------

    def match(self, item: ImageHashes | MediaHashes,
              crop_resistant: CropResistant | None = None) -> list[HashMatch]:
        """The matches that count for one item (allow lists already applied)."""
        return self.match_many([item], [crop_resistant])[0].matches

    def match_many(self, items: Sequence[ImageHashes | MediaHashes],
                   crop_resistant: Sequence[CropResistant | None] | None = None
                   ) -> list[MatchResult]:
        """One result per item, in order; one index search per algorithm for the batch.

        ``crop_resistant[i]``, when given, computes item i's crop-resistant hash; it is
        called only if the item's pHash came near an entry that has one without matching it.
        """
        self.refresh()
        now = datetime.now(UTC)
        queries = [_Query.of(item) for item in items]
        found: list[dict[tuple[int, str], tuple[Entry, int]]] = [{} for _ in items]
        self._match_crypto(queries, found)
        for algorithm in PERCEPTUAL:
            self._match_perceptual(algorithm, queries, found)
        for query, hits, compute in zip(queries, found, crop_resistant or [None] * len(items),
                                        strict=True):
            if compute is not None:
                self._match_crop_resistant(query, hits, compute)
        return [self._resolve(q, hits, now) for q, hits in zip(queries, found, strict=True)]

    def _match_crop_resistant(self, query: _Query, hits: dict, compute: CropResistant) -> None:
        """Confirm a near pHash with the crop-resistant hash: finds 5-10 % crops."""
        matched = {entry_id for entry_id, _ in hits}
        near = [(i, d) for i, d in self._cropped.near(query.phash) if i not in matched]
        if not near:
            return
        value = compute()
        if not value:
            return
        entries = self.store.entries_by_id(i for i, _ in near)
        for entry_id, distance in near:
            entry = entries.get(entry_id)
            if entry is None or entry.crop_resistant is None:
                continue
            if crop_resistant_regions(value, entry.crop_resistant) >= CROP_RESISTANT_MIN_REGIONS:
                hits[(entry_id, CROP_RESISTANT)] = (entry, distance)

    def _match_crypto(self, queries: list[_Query], found: list[dict]) -> None:
        for query, hits in zip(queries, found, strict=True):
            for algorithm, value in query.crypto.items():
                for entry in self.store.entries_with_hash(algorithm, value):
                    hits[(entry.id, algorithm)] = (entry, 0)

    def _match_perceptual(self, algorithm: str, queries: list[_Query], found: list[dict]) -> None:
        index = self._indexes.get(algorithm)
        radius = self._radius(algorithm)
        if index is None or not len(index) or radius < 0:
            return
        owner: list[int] = []
        quality: list[int] = []
        hexes: list[str] = []
        for item_no, query in enumerate(queries):
            rows = query.pdq if algorithm == "pdq" else [(h, 100) for h in query.phash]
            for value, q in rows:
                owner.append(item_no)
                quality.append(q)
                hexes.append(value)
        if not hexes:
            return
        hits: Hits = index.search(hex_to_bytes(hexes, index.bits), radius)
        entries = self.store.entries_by_id(hits.entry_id.tolist())
        for row, entry_id, distance in zip(hits.query.tolist(), hits.entry_id.tolist(),
                                           hits.distance.tolist(), strict=True):
            entry = entries.get(entry_id)
            bank = self._banks.get(entry.bank_id) if entry else None
            if entry is None or bank is None or distance > bank.threshold(algorithm):
                continue
            if algorithm == "pdq" and quality[row] < bank.pdq_min_quality:
                continue
            best = found[owner[row]].get((entry_id, algorithm))
            if best is None or distance < best[1]:
                found[owner[row]][(entry_id, algorithm)] = (entry, distance)

    def _radius(self, algorithm: str) -> int:
        """The widest threshold any bank uses: one search serves them all."""
        return max((b.threshold(algorithm) for b in self._banks.values()), default=-1)

    def _resolve(self, query: _Query, hits: dict, now: datetime) -> MatchResult:
        """Drop inactive entries and banks, then apply allow lists.

        An allow-list hit by a cryptographic hash suppresses every match (the very file
        is known to be benign); a perceptual allow-list hit suppresses only perceptual
        matches, because an exact file match to a list of known abuse is stronger
        evidence than a lookalike on an allow list.
        """
        result = MatchResult()
        positive: list[HashMatch] = []
        allow_exact = allow_perceptual = False
        for (_, algorithm), (entry, distance) in hits.items():
            bank = self._banks.get(entry.bank_id)
            if bank is None or not bank.active(now) or not entry.active(now):
                continue
            match = _to_contract(query.sha256, bank, entry, algorithm, distance)
            if bank.kind == "allow":
                result.allowed_by.append(match)
                allow_exact |= algorithm in CRYPTO
                allow_perceptual |= algorithm not in CRYPTO
            else:
                positive.append(match)
        for match in sorted(positive, key=lambda m: (-(m.severity or 0), m.distance, m.bank)):
            perceptual = match.algorithm not in CRYPTO
            if allow_exact or (allow_perceptual and perceptual):
                result.suppressed.append(match)
            else:
                result.matches.append(match)
        return result


@dataclass(frozen=True)
class _CropResistantEntries:
    """The entries that carry a crop-resistant hash, with their pHash, for the shortlist.

    They come only from images harmwatch holds (the confirmed bank), thousands rather than
    millions, so a vectorised scan of their pHashes is cheaper than an index.
    """

    ids: np.ndarray  # int64
    phash: np.ndarray  # uint64

    @classmethod
    def empty(cls) -> _CropResistantEntries:
        return cls(np.zeros(0, np.int64), np.zeros(0, np.uint64))

    @classmethod
    def load(cls, store: BankStore) -> _CropResistantEntries:
        rows = store.crop_resistant_entries()
        if not rows:
            return cls.empty()
        return cls(np.array([r[0] for r in rows], np.int64),
                   np.array([int(r[1], 16) for r in rows], np.uint64))

    def near(self, phashes: list[str]) -> list[tuple[int, int]]:
        """(entry id, smallest pHash distance) of entries within the shortlist distance."""
        if not len(self.ids) or not phashes:
            return []
        query = np.array([int(h, 16) for h in phashes], np.uint64)
        distance = np.bitwise_count(query[:, None] ^ self.phash[None, :]).min(axis=0)
        close = np.flatnonzero(distance <= CROP_RESISTANT_SHORTLIST)
        return [(int(self.ids[i]), int(distance[i])) for i in close]


def _to_contract(
    sha256: str | None, bank: Bank, entry: Entry, algorithm: str, distance: int
) -> HashMatch:
    return HashMatch(
        media_sha256=sha256,
        bank=bank.name,
        list_version=bank.list_version,
        algorithm=algorithm,  # type: ignore[arg-type]
        distance=distance,
        entry_id=str(entry.id),
        category=entry.category,
        severity=entry.severity,
        source_list=entry.source_list,
    )


def _pointer_text(directory: Path) -> str:
    try:
        return (directory / "CURRENT.json").read_text()
    except FileNotFoundError:
        return ""
