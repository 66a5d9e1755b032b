"""Exact Hamming-radius search over PDQ (256-bit) and pHash (64-bit) hashes.

Multi-index hashing (Norouzi et al.), made exact by the pigeonhole principle: the hash
is cut into ``m`` chunks and chunk table j is probed with the query's chunk value and
every value within ``f_j`` flips of it. If the (f_j + 1) add up to more than the radius
``r``, an entry within ``r`` differs in at most f_j bits of some chunk j (otherwise it
would differ in at least that sum), so *every* entry within ``r`` is found — 100%
recall, not an approximation. Each candidate is then verified with a full popcount
distance. :func:`chunk_flips` spreads the flips where they cost least.

The chunk width follows the index size (:func:`chunk_widths`): 16 chunks of 16 bits
(PDQ at r = 31: one flip each, 272 probe keys) below 3M entries; 12 chunks of 21-22 bits
(two flips in eight, one in four: ~2,000 keys, ~6x fewer candidates) up to 16M; 11 of
23-24 bits beyond.

Layout of a built :class:`Segment` (one ``.npy`` file each, memory-mapped on load so
start-up costs page-ins, not parsing; ``layout.json`` holds the widths):

* ``hashes``        (N, bits/8) uint8 — the hashes, sorted by their first chunk
* ``ids``           (N,) uint32      — the bank entry id (SQLite rowid) of row i
* ``order_low``     (m-1, N) uint16  — chunk tables 1..m-1: row numbers sorted by that
* ``order_high``    (m-1, N) uint8   —   chunk's value (low 16 bits and the rest; uint16
                                         above 16M entries). Table 0 needs none: the rows
                                         are already in its order.
* ``anchors``       flat uint32      — per table, where every 2^shift-th bucket starts
* ``bucket_starts`` flat uint8/16    — per bucket, its start relative to its anchor

Memory per 256-bit entry: 32 + 4 + 3(m-1) bytes plus the bucket starts: 81 + about 2 at
1M entries, about 73 at 10M (was 100 and 97 with plain 4-byte tables). See
docs/formats/hash-lists.md, "Index memory", for why an exact sub-linear index cannot
reach 40 bytes.

Entries added after a build live in a small :class:`Delta` that is scanned by brute
force; removals and disables are applied by the caller when it resolves ids, so neither
needs a rebuild.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import json
import logging
import math
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

CHUNK_BITS = 16  # for indexes under 3M entries; see chunk_widths
LAYOUT = 2  # bumped when the saved arrays change meaning; older segments are rebuilt
# Bucket starts share a 32-bit anchor per 2^shift buckets (see _compress_offsets).
_MAX_ANCHOR_SHIFT = 6
# Row numbers take 3 bytes up to this many entries, 4 beyond.
_THREE_BYTE_ROWS = 1 << 24
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
    if max_flips < 0:
        return np.zeros(0, dtype=np.int64)
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
    12 chunks of 21-22 bits probe about 2,000 keys (see :func:`chunk_flips`) and return
    about 6x fewer candidates at 10M. The bucket starts grow as 2^width, so wide chunks
    only pay off for large indexes.
    """
    if bits == 256 and entries >= 16_000_000:
        count = 11
    elif bits == 256 and entries >= 3_000_000:
        count = 12
    else:
        count = bits // CHUNK_BITS
    base, extra = divmod(bits, count)
    return tuple(base + 1 if i < extra else base for i in range(count))


def chunk_flips(widths: tuple[int, ...], radius: int, entries: int) -> tuple[int, ...]:
    """How many bit flips to probe in each chunk table; -1 skips a table.

    The generalised pigeonhole principle: if every table j is probed up to f_j flips and
    the sum of (f_j + 1) exceeds ``radius``, an entry within ``radius`` differs in at
    most f_j bits of some chunk j and is found. The flips are handed out one at a
    time to the table where the next one costs least (probe keys plus expected
    candidates), so 12 tables at radius 31 probe 2 flips in eight and 1 in four
    instead of 2 in all twelve: about a third fewer candidates at 10M entries.
    """
    flips = [-1] * len(widths)

    def next_cost(j: int) -> float:
        keys = math.comb(widths[j], flips[j] + 1)
        return keys * (1 + entries / 2 ** widths[j])

    for _ in range(min(radius + 1, sum(w + 1 for w in widths))):
        cheapest = min((j for j in range(len(widths)) if flips[j] < widths[j]), key=next_cost)
        flips[cheapest] += 1
    return tuple(flips)


@functools.lru_cache(maxsize=64)
def _probe_masks(widths: tuple[int, ...], radius: int, entries: int) -> tuple[np.ndarray, ...]:
    """Each table's XOR masks for one radius, computed once: building them takes ~0.8 ms,
    a fifth of a single image's lookup at 10M entries."""
    masks = tuple(flip_masks(f, w) for f, w in
                  zip(chunk_flips(widths, radius, entries), widths, strict=True))
    for m in masks:
        m.setflags(write=False)
    return masks


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
    """An immutable, memory-mappable multi-index over N hashes of one width.

    Three savings over a plain multi-index keep it near the floor argued in
    docs/formats/hash-lists.md ("Index memory"): the rows are stored sorted by the first
    chunk, so that chunk's table needs no row numbers at all; the other tables' row
    numbers take 3 bytes (a 16-bit and an 8-bit array) while N fits in 24 bits; and each
    bucket's start is kept as a small offset from a 32-bit anchor shared by 2^shift
    buckets, 1 byte where the data allows, 2 otherwise.
    """

    def __init__(self, hashes: np.ndarray, ids: np.ndarray, order_low: np.ndarray,
                 order_high: np.ndarray, anchors: np.ndarray, bucket_starts: np.ndarray,
                 widths: tuple[int, ...], shift: int) -> None:
        self.hashes = hashes
        self.ids = ids
        self.order_low = order_low
        self.order_high = order_high
        self.anchors = anchors
        self.bucket_starts = bucket_starts
        self.widths = tuple(int(w) for w in widths)
        self.shift = int(shift)
        self.bits = hashes.shape[1] * 8
        self.chunks = len(self.widths)
        buckets = [(1 << w) + 1 for w in self.widths]
        groups = [((1 << w) >> self.shift) + 1 for w in self.widths]
        self.bucket_bases = np.concatenate([[0], np.cumsum(buckets)[:-1]]).astype(np.int64)
        self.anchor_bases = np.concatenate([[0], np.cumsum(groups)[:-1]]).astype(np.int64)

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def arrays(self) -> dict[str, np.ndarray]:
        return {"hashes": self.hashes, "ids": self.ids, "order_low": self.order_low,
                "order_high": self.order_high, "anchors": self.anchors,
                "bucket_starts": self.bucket_starts}

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in self.arrays.values())

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
        segment = cls(*_sorted_tables(hashes, np.asarray(ids), widths))
        _return_freed_memory()  # after _sorted_tables's temporaries are gone
        return segment

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        for name, array in self.arrays.items():
            np.save(directory / f"{name}.npy", array)
        (directory / "layout.json").write_text(json.dumps(
            {"layout": LAYOUT, "widths": list(self.widths), "shift": self.shift}))

    @classmethod
    def load(cls, directory: Path) -> Segment:
        """Map a saved segment; one saved by an older layout is rebuilt in memory."""
        layout_file = directory / "layout.json"
        if not layout_file.exists():
            return cls._rebuilt(directory)
        layout = json.loads(layout_file.read_text())
        if layout.get("layout") != LAYOUT:
            return cls._rebuilt(directory)
        arrays = [np.load(directory / f"{n}.npy", mmap_mode="r") for n in
                  ("hashes", "ids", "order_low", "order_high", "anchors", "bucket_starts")]
        return cls(*arrays, tuple(layout["widths"]), layout["shift"])

    @classmethod
    def _rebuilt(cls, directory: Path) -> Segment:
        """Every layout so far kept ``hashes.npy`` and ``ids.npy`` row-aligned, so an
        old segment is rebuilt from them: correct at once, saved in the new layout at
        the next compaction (or ``harmwatch banks reindex``)."""
        log.warning("%s: index saved by an older version; rebuilding it in memory "
                    "(run `harmwatch banks reindex` to save it in the new layout)", directory)
        return cls.build(np.load(directory / "hashes.npy"), np.load(directory / "ids.npy"))

    def search(self, queries: np.ndarray, radius: int) -> Hits:
        """Every (query, entry) pair within ``radius``: probe, gather, verify, dedupe."""
        if not len(self) or not len(queries):
            return Hits.empty()
        masks = _probe_masks(self.widths, radius, len(self))
        per_query = sum(len(m) * max(1, len(self) >> w) for m, w in
                        zip(masks, self.widths, strict=True))
        step = max(1, _CANDIDATES_PER_STEP // per_query)
        parts = [
            self._search_batch(queries[start : start + step], radius, masks, start)
            for start in range(0, len(queries), step)
        ]
        return Hits.concat(parts)

    def _bucket_offsets(self, buckets: np.ndarray, anchors: np.ndarray) -> np.ndarray:
        return (np.take(self.anchors, anchors).astype(np.int64)
                + np.take(self.bucket_starts, buckets))

    def _search_batch(
        self, queries: np.ndarray, radius: int, masks: tuple[np.ndarray, ...], first: int
    ) -> Hits:
        """All chunk tables probed in one vectorised pass (per-call overhead matters:
        the analyzer often looks up a single image's eight variants).

        np.take is used throughout: it is several times faster than fancy indexing for
        these large random gathers, which dominate the search time.
        """
        n = len(self)
        query_numbers = np.arange(len(queries))
        buckets, groups, next_groups, tables, owners = [], [], [], [], []
        for j, key in enumerate(chunk_keys(queries, self.widths)):
            keys = (key[:, None] ^ masks[j][None, :]).ravel()
            buckets.append(keys + self.bucket_bases[j])
            groups.append((keys >> self.shift) + self.anchor_bases[j])
            next_groups.append(((keys + 1) >> self.shift) + self.anchor_bases[j])
            # Table 0's positions are row numbers; table j's index row j-1 of `order_*`.
            tables.append(np.full(len(keys), max(0, j - 1) * n, dtype=np.int64))
            owners.append(query_numbers.repeat(len(masks[j])))
        bucket = np.concatenate(buckets)
        starts = self._bucket_offsets(bucket, np.concatenate(groups))
        lengths = self._bucket_offsets(bucket + 1, np.concatenate(next_groups)) - starts
        total = int(lengths.sum())
        if not total:
            return Hits.empty()
        # Expand every [start, start+length) range into flat positions in one pass.
        ends = np.cumsum(lengths)
        flat = np.arange(total, dtype=np.int64) + np.repeat(
            starts - (ends - lengths) + np.concatenate(tables), lengths)
        first_probes = len(queries) * len(masks[0])
        from_first = int(ends[first_probes - 1]) if first_probes else 0
        rows = np.empty(total, dtype=np.int64)
        rows[:from_first] = flat[:from_first]
        rest = flat[from_first:]
        rows[from_first:] = np.take(self.order_low.reshape(-1), rest)
        rows[from_first:] |= np.take(self.order_high.reshape(-1), rest).astype(np.int64) << 16
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


def _sorted_tables(hashes: np.ndarray, ids: np.ndarray, widths: tuple[int, ...]) -> tuple:
    """A :class:`Segment`'s arrays: rows in first-chunk order, the other tables' row
    numbers split into low and high parts, and the compressed bucket starts."""
    first = np.argsort(next(chunk_keys(hashes, widths[:1])), kind="stable")
    hashes = hashes[first]
    ids = ids[first].astype(np.uint32)
    n = len(hashes)
    order_low = np.empty((len(widths) - 1, n), dtype=np.uint16)
    order_high = np.empty((len(widths) - 1, n), dtype=np.uint8 if n <= _THREE_BYTE_ROWS else np.uint16)
    offsets = []
    for j, (width, key) in enumerate(zip(widths, chunk_keys(hashes, widths), strict=True)):
        counts = np.bincount(key, minlength=1 << width)
        offsets.append(np.concatenate([np.zeros(1, np.uint32), np.cumsum(counts, dtype=np.uint32)]))
        if j:
            order = np.argsort(key, kind="stable")
            order_low[j - 1] = order & 0xFFFF
            order_high[j - 1] = order >> 16
    anchors, bucket_starts, shift = _compress_offsets(offsets)
    return hashes, ids, order_low, order_high, anchors, bucket_starts, widths, shift


def _return_freed_memory() -> None:
    """Hand the build's freed temporaries back to the OS.

    The per-table sort keys and bucket counts are tens of MB each; glibc keeps such
    blocks in the heap once its mmap threshold has grown, which at 10M entries left a
    long-lived matcher process ~140 MB larger than its index. A no-op off glibc.
    """
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def _compress_offsets(offsets: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, int]:
    """Bucket starts as 32-bit anchors every 2^shift buckets plus small offsets from them.

    The cheapest grouping whose offsets fit in one or two bytes wins. Skewed banks (many
    hashes sharing a chunk value) get narrower groups, down to an anchor per bucket,
    which always fits, so any data can be stored.
    """
    best: tuple[int, np.dtype, int] | None = None
    for shift in range(_MAX_ANCHOR_SHIFT + 1):
        # Offsets only grow, so a group's largest relative start is its last one.
        widest = max(int(np.max(o[np.minimum(np.arange(0, len(o), 1 << shift) + (1 << shift) - 1,
                                             len(o) - 1)] - o[:: 1 << shift])) for o in offsets)
        for dtype in (np.dtype(np.uint8), np.dtype(np.uint16)):
            cost = sum(len(o) * dtype.itemsize + 4 * (len(o) >> shift) for o in offsets)
            if widest <= np.iinfo(dtype).max and (best is None or cost < best[0]):
                best = (cost, dtype, shift)
    assert best is not None  # shift 0 always fits
    _, dtype, shift = best
    anchors = [o[:: 1 << shift] for o in offsets]
    starts = [(o - np.repeat(a, 1 << shift)[: len(o)]).astype(dtype) for o, a in
              zip(offsets, anchors, strict=True)]
    return np.concatenate(anchors).astype(np.uint32), np.concatenate(starts), shift


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
