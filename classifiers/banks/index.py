"""Exact Hamming-radius search over PDQ (256-bit) and pHash (64-bit) hashes.

Multi-index hashing (Norouzi et al.), made exact by the pigeonhole principle: the hash
is cut into ``m`` chunks. If two hashes differ in at most ``r`` bits, at least one chunk
differs in at most ``f = r // m`` bits (otherwise the total would be at least
``m * (f + 1) > r``). So probing, in every chunk table, the query's chunk value and every
value within ``f`` flips of it finds *every* entry within ``r`` — 100% recall, not an
approximation. Each candidate is then verified with a full popcount distance.

The chunk width follows the index size (:func:`chunk_widths`): 16 chunks of 16 bits
(PDQ at r = 31: f = 1, 272 probes) below 3M entries; 12 chunks of 21-22 bits (f = 2,
~2,900 probes, ~4x fewer candidates) up to 16M; 11 of 23-24 bits beyond.

Layout of a built :class:`Segment` (one ``.npy`` file each, memory-mapped on load so
start-up costs page-ins, not parsing):

* ``hashes``  (N, bits/8) uint8  — the hashes, row i is entry ``ids[i]``
* ``ids``     (N,) uint32        — the bank entry id (SQLite rowid) of row i
* ``order``   (m, N) uint32      — per chunk, row numbers sorted by that chunk's value
* ``offsets`` flat uint32        — per chunk, where each chunk value starts in ``order``
* ``widths``  (m,) int64         — the chunk widths in bits

Memory per 256-bit entry: 32 + 4 + 4m bytes plus the offsets: 100 bytes at 1M entries,
about 97 at 10M (see docs/formats/hash-lists.md, "Index memory", for why an exact
sub-linear index cannot reach 40 bytes).

Entries added after a build live in a small :class:`Delta` that is scanned by brute
force; removals and disables are applied by the caller when it resolves ids, so neither
needs a rebuild.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path

import numpy as np

CHUNK_BITS = 16  # for indexes under 3M entries; see chunk_widths
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


def popcount_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise Hamming distance of two equally shaped uint8 arrays (..., bytes)."""
    x = np.bitwise_xor(a, b)
    if x.shape[-1] % 8 == 0:
        x = x.view(np.uint64)
    return np.bitwise_count(x).sum(axis=-1, dtype=np.int64)


def flip_masks(max_flips: int, width: int = 16) -> np.ndarray:
    """Every ``width``-bit XOR mask with at most ``max_flips`` bits set, 0 first."""
    masks = [0]
    for k in range(1, max_flips + 1):
        masks.extend(sum(1 << b for b in bits) for bits in combinations(range(width), k))
    return np.array(masks, dtype=np.int64)


def chunk_widths(bits: int, entries: int) -> tuple[int, ...]:
    """How to cut a hash into chunks, chosen by how many entries the index holds.

    Each chunk value should select about one entry: with 16-bit chunks a 10M-entry index
    has ~150 entries per bucket, and verifying those candidates (one cache miss each)
    is what a lookup costs. Wider chunks mean more probe keys per chunk but far fewer
    candidates: for PDQ at distance 31, 16 x 16 bits probe 272 keys (1 flip each), while
    12 chunks of 21-22 bits probe about 2,900 keys (2 flips) and return about 4x fewer
    candidates at 10M. The offsets table grows as 2^width, so wide chunks only pay off
    for large indexes.
    """
    if bits == 256 and entries >= 16_000_000:
        count = 11
    elif bits == 256 and entries >= 3_000_000:
        count = 12
    else:
        count = bits // CHUNK_BITS
    base, extra = divmod(bits, count)
    return tuple(base + 1 if i < extra else base for i in range(count))


def chunk_keys(rows: np.ndarray, widths: tuple[int, ...]) -> Iterator[np.ndarray]:
    """Each chunk's value for every row, as int64, first bit of the hash first."""
    words = np.ascontiguousarray(rows).view(">u8").astype(np.uint64)
    start = 0
    for width in widths:
        word, offset = divmod(start, 64)
        if offset + width <= 64:
            key = (words[:, word] >> np.uint64(64 - offset - width)) & np.uint64((1 << width) - 1)
        else:
            low = offset + width - 64
            high = (words[:, word] & np.uint64((1 << (64 - offset)) - 1)) << np.uint64(low)
            key = high | (words[:, word + 1] >> np.uint64(64 - low))
        yield key.astype(np.int64)
        start += width


class Segment:
    """An immutable, memory-mappable multi-index over N hashes of one width."""

    def __init__(self, hashes: np.ndarray, ids: np.ndarray, order: np.ndarray,
                 offsets: np.ndarray, widths: np.ndarray) -> None:
        self.hashes = hashes
        self.ids = ids
        self.order = order
        self.offsets = offsets
        self.widths = tuple(int(w) for w in widths)
        self.bits = hashes.shape[1] * 8
        self.chunks = len(self.widths)
        # Where each chunk's offsets start in the flat offsets array.
        sizes = [(1 << w) + 1 for w in self.widths]
        self.bases = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in (self.hashes, self.ids, self.order, self.offsets))

    @classmethod
    def build(cls, hashes: np.ndarray, ids: np.ndarray,
              widths: tuple[int, ...] | None = None) -> Segment:
        """Sort the rows by each chunk's value once: tens of seconds at 10M.

        ``widths`` overrides :func:`chunk_widths` (tests use it to exercise wide chunks
        on small data); they must add up to the hash's bits.
        """
        hashes = np.ascontiguousarray(hashes, dtype=np.uint8)
        if hashes.shape[1] % 8:
            raise ValueError("hash width must be a multiple of 64 bits")
        widths = widths or chunk_widths(hashes.shape[1] * 8, len(hashes))
        if sum(widths) != hashes.shape[1] * 8 or max(widths) > 32:
            raise ValueError(f"chunk widths {widths} do not cut {hashes.shape[1] * 8} bits")
        order = np.empty((len(widths), len(hashes)), dtype=np.uint32)
        offsets = []
        for j, (width, key) in enumerate(zip(widths, chunk_keys(hashes, widths), strict=True)):
            order[j] = np.argsort(key, kind="stable")
            counts = np.bincount(key, minlength=1 << width)
            offsets.append(np.concatenate([[0], np.cumsum(counts)]).astype(np.uint32))
        return cls(hashes, np.asarray(ids, dtype=np.uint32), order,
                   np.concatenate(offsets), np.array(widths, dtype=np.int64))

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        for name in ("hashes", "ids", "order", "offsets"):
            np.save(directory / f"{name}.npy", getattr(self, name))
        np.save(directory / "widths.npy", np.array(self.widths, dtype=np.int64))

    @classmethod
    def load(cls, directory: Path) -> Segment:
        arrays = [np.load(directory / f"{n}.npy", mmap_mode="r") for n in
                  ("hashes", "ids", "order", "offsets")]
        return cls(*arrays, np.load(directory / "widths.npy"))

    def search(self, queries: np.ndarray, radius: int) -> Hits:
        """Every (query, entry) pair within ``radius``: probe, gather, verify, dedupe."""
        if not len(self) or not len(queries):
            return Hits.empty()
        flips = radius // self.chunks
        masks = [flip_masks(flips, w) for w in self.widths]
        per_query = sum(len(m) * max(1, len(self) >> w) for m, w in
                        zip(masks, self.widths, strict=True))
        step = max(1, _CANDIDATES_PER_STEP // per_query)
        parts = [
            self._search_batch(queries[start : start + step], radius, masks, start)
            for start in range(0, len(queries), step)
        ]
        return Hits.concat(parts)

    def _search_batch(
        self, queries: np.ndarray, radius: int, masks: list[np.ndarray], first: int
    ) -> Hits:
        """All chunk tables probed in one vectorised pass (per-call overhead matters:
        the analyzer often looks up a single image's eight variants).

        np.take is used throughout: it is several times faster than fancy indexing for
        these large random gathers, which dominate the search time.
        """
        n = len(self)
        query_numbers = np.arange(len(queries))
        probes, tables, owners = [], [], []
        for j, key in enumerate(chunk_keys(queries, self.widths)):
            keys = (key[:, None] ^ masks[j][None, :]).ravel()
            probes.append(keys + self.bases[j])
            tables.append(np.full(len(keys), j * n, dtype=np.int64))
            owners.append(query_numbers.repeat(len(masks[j])))
        probe = np.concatenate(probes)
        starts = np.take(self.offsets, probe).astype(np.int64)
        lengths = np.take(self.offsets, probe + 1).astype(np.int64) - starts
        total = int(lengths.sum())
        if not total:
            return Hits.empty()
        # Expand every [start, start+length) range into flat positions in one pass; the
        # chunk's row of `order` is added so that one flat take serves every table.
        ends = np.cumsum(lengths)
        flat = np.arange(total, dtype=np.int64) + np.repeat(
            starts - (ends - lengths) + np.concatenate(tables), lengths)
        rows = np.take(self.order.reshape(-1), flat).astype(np.int64)
        qrow = np.concatenate(owners).repeat(lengths)
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
