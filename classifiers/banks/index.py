"""Exact Hamming-radius search over PDQ (256-bit) and pHash (64-bit) hashes.

Multi-index hashing (Norouzi et al.), made exact by the pigeonhole principle: the hash
is cut into ``m`` chunks of 16 bits. If two hashes differ in at most ``r`` bits, at
least one chunk differs in at most ``f = r // m`` bits (otherwise the total would be at
least ``m * (f + 1) > r``). So probing, in every chunk table, the query's chunk value and
every value within ``f`` flips of it finds *every* entry within ``r`` — 100% recall, not
an approximation. Each candidate is then verified with a full popcount distance.

For PDQ at r = 31: m = 16 chunks, f = 1, so 16 x 17 = 272 probes per query hash.

Layout of a built :class:`Segment` (one ``.npy`` file each, memory-mapped on load so
start-up costs page-ins, not parsing):

* ``hashes``  (N, bits/8) uint8  — the hashes, row i is entry ``ids[i]``
* ``ids``     (N,) uint32        — the bank entry id (SQLite rowid) of row i
* ``order``   (m, N) uint32      — per chunk, row numbers sorted by that chunk's value
* ``offsets`` (m, 65537) uint32  — per chunk, where each chunk value starts in ``order``

Memory per 256-bit entry: 32 + 4 + 16 x 4 = 100 bytes (see docs/formats/hash-lists.md,
"Index memory", for why an exact sub-linear index cannot reach 40 bytes).

Entries added after a build live in a small :class:`Delta` that is scanned by brute
force; removals and disables are applied by the caller when it resolves ids, so neither
needs a rebuild.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path

import numpy as np

CHUNK_BITS = 16
CHUNK_VALUES = 1 << CHUNK_BITS
# Candidates verified per step: bounds temporary memory to roughly 64 MB for PDQ.
_CANDIDATES_PER_STEP = 125000


@dataclass(frozen=True)
class Hits:
    """Search results, one row per (query, entry) within the radius."""

    query: np.ndarray  # int64 row number into the queries
    entry_id: np.ndarray  # int64 bank entry id
    distance: np.ndarray  # int64 Hamming distance

    def __len__(self) -> int:
        return len(self.entry_id)

    @staticmethod
    def empty() -> Hits:
        none = np.zeros(0, dtype=np.int64)
        return Hits(none, none, none)

    @staticmethod
    def concat(parts: list[Hits]) -> Hits:
        parts = [p for p in parts if len(p)]
        if not parts:
            return Hits.empty()
        return Hits(
            np.concatenate([p.query for p in parts]),
            np.concatenate([p.entry_id for p in parts]),
            np.concatenate([p.distance for p in parts]),
        )


def hex_to_bytes(hexes: list[str], bits: int) -> np.ndarray:
    """Hex strings to an (n, bits/8) uint8 array (one C-level pass, no per-row numpy)."""
    width = bits // 8
    if not hexes:
        return np.zeros((0, width), dtype=np.uint8)
    raw = bytes.fromhex("".join(hexes))
    return np.frombuffer(raw, dtype=np.uint8).reshape(len(hexes), width).copy()


def bytes_to_hex(rows: np.ndarray) -> list[str]:
    return [row.tobytes().hex() for row in rows]


def popcount_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise Hamming distance of two equally shaped uint8 arrays (..., bytes)."""
    x = np.bitwise_xor(a, b)
    if x.shape[-1] % 8 == 0:
        x = x.view(np.uint64)
    return np.bitwise_count(x).sum(axis=-1, dtype=np.int64)


def flip_masks(max_flips: int) -> np.ndarray:
    """Every 16-bit XOR mask with at most ``max_flips`` bits set, 0 first."""
    masks = [0]
    for k in range(1, max_flips + 1):
        masks.extend(sum(1 << b for b in bits) for bits in combinations(range(CHUNK_BITS), k))
    return np.array(masks, dtype=np.int64)


def _chunks(rows: np.ndarray) -> np.ndarray:
    """(n, bytes) uint8 to (n, m) int64 chunk values (big-endian 16-bit words)."""
    return np.ascontiguousarray(rows).view(">u2").astype(np.int64)


class Segment:
    """An immutable, memory-mappable multi-index over N hashes of one width."""

    def __init__(
        self, hashes: np.ndarray, ids: np.ndarray, order: np.ndarray, offsets: np.ndarray
    ) -> None:
        self.hashes = hashes
        self.ids = ids
        self.order = order
        self.offsets = offsets
        self.bits = hashes.shape[1] * 8
        self.chunks = self.bits // CHUNK_BITS

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in (self.hashes, self.ids, self.order, self.offsets))

    @classmethod
    def build(cls, hashes: np.ndarray, ids: np.ndarray) -> Segment:
        """Sort each chunk's values once (a radix sort for 16-bit keys): seconds at 10M."""
        hashes = np.ascontiguousarray(hashes, dtype=np.uint8)
        if hashes.shape[1] * 8 % CHUNK_BITS:
            raise ValueError("hash width must be a multiple of 16 bits")
        keys = np.ascontiguousarray(hashes).view(">u2").astype(np.uint16)
        m = keys.shape[1]
        order = np.empty((m, len(hashes)), dtype=np.uint32)
        offsets = np.empty((m, CHUNK_VALUES + 1), dtype=np.uint32)
        for j in range(m):
            column = keys[:, j]
            order[j] = np.argsort(column, kind="stable")
            offsets[j, 0] = 0
            np.cumsum(np.bincount(column, minlength=CHUNK_VALUES), out=offsets[j, 1:])
        return cls(hashes, np.asarray(ids, dtype=np.uint32), order, offsets)

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        for name in ("hashes", "ids", "order", "offsets"):
            np.save(directory / f"{name}.npy", getattr(self, name))

    @classmethod
    def load(cls, directory: Path) -> Segment:
        arrays = [np.load(directory / f"{n}.npy", mmap_mode="r") for n in
                  ("hashes", "ids", "order", "offsets")]
        return cls(*arrays)

    def search(self, queries: np.ndarray, radius: int) -> Hits:
        """Every (query, entry) pair within ``radius``: probe, gather, verify, dedupe."""
        if not len(self) or not len(queries):
            return Hits.empty()
        masks = flip_masks(radius // self.chunks)
        per_query = len(masks) * self.chunks * max(1, len(self) // CHUNK_VALUES)
        step = max(1, _CANDIDATES_PER_STEP // per_query)
        parts = [
            self._search_batch(queries[start : start + step], radius, masks, start)
            for start in range(0, len(queries), step)
        ]
        return Hits.concat(parts)

    def _search_batch(
        self, queries: np.ndarray, radius: int, masks: np.ndarray, first: int
    ) -> Hits:
        """All chunk tables probed in one vectorised pass (per-call overhead matters:
        the analyzer often looks up a single image's eight variants).

        np.take is used throughout: it is several times faster than fancy indexing for
        these large random gathers, which dominate the search time.
        """
        n = len(self)
        qchunks = _chunks(queries)  # (Q, m)
        # Probe keys, made global by offsetting each chunk's table: shape (Q, m, P).
        table_base = np.arange(self.chunks, dtype=np.int64)[None, :, None] * (CHUNK_VALUES + 1)
        probe = ((qchunks[:, :, None] ^ masks[None, None, :]) + table_base).ravel()
        offsets = self.offsets.reshape(-1)
        starts = np.take(offsets, probe).astype(np.int64)
        lengths = np.take(offsets, probe + 1).astype(np.int64) - starts
        total = int(lengths.sum())
        if not total:
            return Hits.empty()
        # Expand every [start, start+length) range into flat positions in one pass; the
        # chunk's row of `order` is added so one flat take serves every table.
        order_base = np.repeat(
            np.tile(np.arange(self.chunks, dtype=np.int64).repeat(len(masks)), len(queries))
            * n, lengths)
        ends = np.cumsum(lengths)
        flat = np.arange(total, dtype=np.int64) + np.repeat(starts - (ends - lengths), lengths)
        rows = np.take(self.order.reshape(-1), flat + order_base).astype(np.int64)
        qrow = np.repeat(np.arange(len(queries)), self.chunks * len(masks)).repeat(lengths)
        distance = _row_popcount(
            np.take(_words(self.hashes), rows, axis=0) ^ np.take(_words(queries), qrow, axis=0))
        keep = distance <= radius
        qrow, rows, distance = qrow[keep], rows[keep], distance[keep]
        # A near entry is found once per chunk it agrees on: keep one of each pair.
        _, unique = np.unique(qrow * n + rows, return_index=True)
        return Hits(
            qrow[unique] + first,
            np.take(self.ids, rows[unique]).astype(np.int64),
            distance[unique],
        )


def _words(rows: np.ndarray) -> np.ndarray:
    """(n, bytes) uint8 as (n, bytes/8) uint64 without copying (bytes is 8 or 32)."""
    return rows.view(np.uint64)


def _row_popcount(x: np.ndarray) -> np.ndarray:
    """Popcount summed across each row, adding columns (faster than a reduce on axis 1)."""
    counts = np.bitwise_count(x)
    total = counts[:, 0].astype(np.int64)
    for column in range(1, counts.shape[1]):
        total += counts[:, column]
    return total


class Delta:
    """Entries added since the last build, searched by brute force (kept small)."""

    def __init__(self, bits: int) -> None:
        self.bits = bits
        self._hashes = np.zeros((0, bits // 8), dtype=np.uint8)
        self._ids = np.zeros(0, dtype=np.int64)
        self._parts: list[tuple[np.ndarray, np.ndarray]] = []

    def __len__(self) -> int:
        return len(self._ids) + sum(len(i) for _, i in self._parts)

    def add(self, hashes: np.ndarray, ids: np.ndarray) -> None:
        self._parts.append((hashes, np.asarray(ids, dtype=np.int64)))

    def _merge(self) -> None:
        """Concatenate pending additions once, not once per add (imports add in chunks)."""
        if self._parts:
            self._hashes = np.concatenate([self._hashes] + [h for h, _ in self._parts])
            self._ids = np.concatenate([self._ids] + [i for _, i in self._parts])
            self._parts = []

    @property
    def hashes(self) -> np.ndarray:
        self._merge()
        return self._hashes

    @property
    def ids(self) -> np.ndarray:
        self._merge()
        return self._ids

    def search(self, queries: np.ndarray, radius: int) -> Hits:
        if not len(self) or not len(queries):
            return Hits.empty()
        step = max(1, _CANDIDATES_PER_STEP // len(self))
        parts = []
        for start in range(0, len(queries), step):
            block = queries[start : start + step]
            distance = popcount_distance(block[:, None, :], self.hashes[None, :, :])
            q, e = np.nonzero(distance <= radius)
            parts.append(Hits(q + start, self.ids[e], distance[q, e]))
        return Hits.concat(parts)


class HammingIndex:
    """A built segment plus a delta: the searchable state for one perceptual algorithm.

    ``max_id`` is the highest entry id covered; the owner adds newer entries to the
    delta and rebuilds (``compact``) when the delta grows past ``delta_limit``.
    """

    def __init__(self, bits: int, segment: Segment | None = None, max_id: int = 0) -> None:
        self.bits = bits
        self.segment = segment
        self.delta = Delta(bits)
        self.max_id = max_id

    def __len__(self) -> int:
        return (len(self.segment) if self.segment else 0) + len(self.delta)

    def add(self, hashes: np.ndarray, ids: np.ndarray) -> None:
        """Make new entries searchable at once (ids must be above every id already held)."""
        if len(ids):
            self.delta.add(hashes, ids)
            self.max_id = max(self.max_id, int(np.max(ids)))

    def search(self, queries: np.ndarray, radius: int) -> Hits:
        queries = np.ascontiguousarray(queries, dtype=np.uint8)
        parts = [self.delta.search(queries, radius)]
        if self.segment is not None:
            parts.insert(0, self.segment.search(queries, radius))
        return Hits.concat(parts)

    def compacted(self, live_ids: np.ndarray | None = None) -> HammingIndex:
        """A new index with the delta merged into one segment, optionally dropping dead ids."""
        hashes = [self.delta.hashes]
        ids = [self.delta.ids]
        if self.segment is not None:
            hashes.insert(0, np.asarray(self.segment.hashes))
            ids.insert(0, np.asarray(self.segment.ids, dtype=np.int64))
        all_hashes = np.concatenate(hashes)
        all_ids = np.concatenate(ids)
        if live_ids is not None:
            keep = np.isin(all_ids, live_ids)
            all_hashes, all_ids = all_hashes[keep], all_ids[keep]
        return HammingIndex(self.bits, Segment.build(all_hashes, all_ids), self.max_id)

    def save(self, directory: Path) -> None:
        """Write the segment next to the live one and switch atomically.

        Readers in other processes keep their memory maps of the old files (unlinking a
        mapped file is safe on POSIX) and pick up the new version at their next refresh.
        """
        if self.segment is None or len(self.delta):
            raise ValueError("compact the index before saving it")
        directory.mkdir(parents=True, exist_ok=True)
        version = f"v{self.max_id}-{os.getpid()}-{len(self.segment)}"
        self.segment.save(directory / version)
        pointer = directory / "CURRENT.json"
        tmp = directory / f".CURRENT.{os.getpid()}.json"
        tmp.write_text(json.dumps({"version": version, "max_id": self.max_id, "bits": self.bits}))
        os.replace(tmp, pointer)
        for old in directory.iterdir():
            if old.is_dir() and old.name != version:
                shutil.rmtree(old, ignore_errors=True)

    @classmethod
    def load(cls, directory: Path, bits: int) -> HammingIndex:
        """The saved index (memory-mapped), or an empty one when none was saved yet.

        A writer may switch versions between our reading the pointer and opening the
        files; the pointer is then simply read again.
        """
        pointer = directory / "CURRENT.json"
        for _ in range(5):
            try:
                meta = json.loads(pointer.read_text())
            except FileNotFoundError:
                return cls(bits)
            try:
                return cls(bits, Segment.load(directory / meta["version"]), int(meta["max_id"]))
            except FileNotFoundError:
                continue
        raise RuntimeError(f"{directory}: the index kept changing while being loaded")
