"""The Hamming index must return exactly what a brute-force scan returns."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from classifiers.banks import index as index_module
from classifiers.banks.index import (
    HammingIndex,
    Segment,
    chunk_flips,
    chunk_widths,
    flip_masks,
    popcount_distance,
)


def _flip(rng: np.random.Generator, row: np.ndarray, bits: int) -> np.ndarray:
    out = row.copy()
    for b in rng.choice(row.size * 8, size=bits, replace=False):
        out[b // 8] ^= np.uint8(1 << (b % 8))
    return out


def _queries(rng: np.random.Generator, bank: np.ndarray, radius: int, n: int) -> np.ndarray:
    """Queries planted at every distance around the radius, plus unrelated ones."""
    planted = [_flip(rng, bank[rng.integers(len(bank))], int(d))
               for d in rng.integers(0, radius + 4, size=n)]
    noise = rng.integers(0, 256, size=(n, bank.shape[1]), dtype=np.uint8)
    return np.concatenate([np.array(planted), noise])


def _brute(queries: np.ndarray, bank: np.ndarray, ids: np.ndarray, radius: int) -> set:
    distance = popcount_distance(queries[:, None, :], bank[None, :, :])
    q, e = np.nonzero(distance <= radius)
    return {(int(a), int(ids[b]), int(distance[a, b])) for a, b in zip(q, e, strict=True)}


def _found(hits) -> set:
    return set(zip(hits.query.tolist(), hits.entry_id.tolist(), hits.distance.tolist(),
                   strict=True))


@pytest.mark.parametrize(("nbytes", "radius"), [(32, 31), (32, 40), (32, 0), (8, 8), (8, 12)])
def test_segment_recall_is_exact(nbytes: int, radius: int) -> None:
    rng = np.random.default_rng(nbytes * 100 + radius)
    bank = rng.integers(0, 256, size=(20_000, nbytes), dtype=np.uint8)
    # Clusters of near-duplicates make one query hit many entries at once.
    bank[:200] = np.array([_flip(rng, bank[200], int(d)) for d in rng.integers(0, 20, 200)])
    ids = rng.permutation(10 * len(bank))[: len(bank)]
    queries = _queries(rng, bank, radius, 150)
    queries[0] = bank[200]
    expected = _brute(queries, bank, ids, radius)
    assert len(expected) >= 40
    assert _found(Segment.build(bank, ids).search(queries, radius)) == expected


@pytest.mark.parametrize("widths", [(22,) * 4 + (21,) * 8, (24,) * 3 + (23,) * 8,
                                    (20,) * 12 + (16,)])
def test_wide_chunks_are_exact(widths: tuple[int, ...]) -> None:
    """Large indexes cut PDQ into 21-24-bit chunks (keys straddle 64-bit words)."""
    rng = np.random.default_rng(sum(widths))
    bank = rng.integers(0, 256, size=(5_000, 32), dtype=np.uint8)
    ids = np.arange(len(bank)) + 1
    queries = _queries(rng, bank, 31, 120)
    segment = Segment.build(bank, ids, widths)
    assert segment.widths == widths
    assert _found(segment.search(queries, 31)) == _brute(queries, bank, ids, 31)


@pytest.mark.parametrize(("widths", "entries"), [((16,) * 16, 10**6), ((22,) * 4 + (21,) * 8, 10**7),
                                                 ((16,) * 4, 10**5), ((24,) * 3 + (23,) * 8, 10**8)])
def test_chunk_flips_cover_every_radius(widths: tuple[int, ...], entries: int) -> None:
    """The generalised pigeonhole: the (flips + 1) must add up to more than the radius."""
    for radius in range(0, sum(widths) + 1, 3):
        flips = chunk_flips(widths, radius, entries)
        assert sum(f + 1 for f in flips) >= min(radius + 1, sum(w + 1 for w in widths))
        assert all(-1 <= f <= w for f, w in zip(flips, widths, strict=True))
    # At 10M and radius 31 the four cheapest tables to narrow are 21-bit ones.
    if entries == 10**7:
        assert chunk_flips(widths, 31, entries) == (2,) * 8 + (1,) * 4


def test_chunk_widths_follow_index_size() -> None:
    assert chunk_widths(256, 1_000_000) == (16,) * 16
    assert chunk_widths(256, 10_000_000) == (22,) * 4 + (21,) * 8
    assert chunk_widths(256, 20_000_000) == (24,) * 3 + (23,) * 8
    assert chunk_widths(64, 50_000_000) == (16,) * 4


def test_distance_exactly_at_and_beyond_the_radius() -> None:
    rng = np.random.default_rng(7)
    base = rng.integers(0, 256, size=(1, 32), dtype=np.uint8)
    # 31 flips spread so only one 16-bit chunk differs in at most one bit: the
    # pigeonhole worst case. One more flip in that chunk puts it out of reach.
    at = base.copy()
    at[0, 0:30:2] ^= 0b11
    at[0, 30] ^= 0b1
    beyond = at.copy()
    beyond[0, 30] ^= 0b10
    bank = np.concatenate([at, beyond, rng.integers(0, 256, size=(500, 32), dtype=np.uint8)])
    hits = Segment.build(bank, np.arange(len(bank))).search(base, 31)
    assert _found(hits) == {(0, 0, 31)}


def test_flip_masks_count() -> None:
    assert len(flip_masks(0)) == 1
    assert len(flip_masks(1)) == 17
    assert len(flip_masks(2)) == 1 + 16 + 120


def test_delta_adds_without_rebuild_and_compaction_drops_removed(tmp_path: Path) -> None:
    rng = np.random.default_rng(11)
    bank = rng.integers(0, 256, size=(3000, 32), dtype=np.uint8)
    index = HammingIndex(256).compacted()
    index.add(bank[:2000], np.arange(1, 2001))
    index = index.compacted()
    index.add(bank[2000:], np.arange(2001, 3001))  # searchable at once, in the delta
    queries = np.array([_flip(rng, bank[i], 20) for i in (5, 2500)])
    assert _found(index.search(queries, 31)) == {(0, 6, 20), (1, 2501, 20)}

    live = np.setdiff1d(np.arange(1, 3001), [6])
    compacted = index.compacted(live)
    assert len(compacted.delta) == 0 and len(compacted) == 2999
    compacted.save(tmp_path)
    loaded = HammingIndex.load(tmp_path, 256)
    assert isinstance(loaded.segment.hashes, np.memmap)
    assert loaded.max_id == 3000
    assert _found(loaded.search(queries, 31)) == {(1, 2501, 20)}


def test_empty_and_missing_index(tmp_path: Path) -> None:
    assert len(HammingIndex.load(tmp_path / "none", 256)) == 0
    empty = HammingIndex(64).compacted()
    empty.save(tmp_path / "e")
    assert len(HammingIndex.load(tmp_path / "e", 64).search(np.zeros((3, 8), np.uint8), 8)) == 0


def test_memory_per_pdq_entry() -> None:
    rng = np.random.default_rng(2)
    segment = Segment.build(rng.integers(0, 256, size=(200_000, 32), dtype=np.uint8),
                            np.arange(200_000))
    fixed = segment.anchors.nbytes + segment.bucket_starts.nbytes
    # Hash, id, and 3-byte row numbers for 15 of the 16 chunk tables (the rows are
    # stored in the first chunk's order), plus 1 MiB of one-byte bucket starts.
    assert (segment.nbytes - fixed) / len(segment) == 32 + 4 + 15 * 3
    assert segment.bucket_starts.dtype == np.uint8 and fixed < 1.1 * 2**20


@pytest.mark.parametrize("radius", [0, 1, 5])
def test_skipped_first_table_is_exact(radius: int) -> None:
    """At small radii the rows' own table (table 0) may be the one left unprobed."""
    rng = np.random.default_rng(radius)
    bank = rng.integers(0, 256, size=(4_000, 32), dtype=np.uint8)
    ids = np.arange(len(bank)) * 3
    widths = (16,) + (20,) * 12
    assert chunk_flips(widths, radius, len(bank))[0] == -1
    queries = _queries(rng, bank, radius, 80)
    segment = Segment.build(bank, ids, widths)
    assert _found(segment.search(queries, radius)) == _brute(queries, bank, ids, radius)


def test_skewed_bank_and_four_byte_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    """Many hashes sharing chunk values force narrower anchor groups; big banks 4-byte rows."""
    monkeypatch.setattr(index_module, "_THREE_BYTE_ROWS", 1000)
    rng = np.random.default_rng(5)
    bank = rng.integers(0, 256, size=(90_000, 32), dtype=np.uint8)
    bank[:80_000, :4] = 0  # one 16-bit bucket in each of the first two tables holds 80,000
    ids = np.arange(len(bank)) + 7
    segment = Segment.build(bank, ids)
    assert segment.shift == 0 and segment.order_high.dtype == np.uint16
    queries = _queries(rng, bank, 31, 60)
    assert _found(segment.search(queries, 31)) == _brute(queries, bank, ids, 31)


def test_index_saved_by_an_older_layout_is_rebuilt(tmp_path: Path) -> None:
    rng = np.random.default_rng(9)
    bank = rng.integers(0, 256, size=(3_000, 32), dtype=np.uint8)
    ids = np.arange(len(bank)) + 1
    old = tmp_path / "v3000-1-3000"
    old.mkdir()
    np.save(old / "hashes.npy", bank)  # layout 1: no layout.json, order/offsets arrays
    np.save(old / "ids.npy", ids.astype(np.uint32))
    (tmp_path / "CURRENT.json").write_text('{"version": "v3000-1-3000", "max_id": 3000}')
    loaded = HammingIndex.load(tmp_path, 256)
    queries = _queries(rng, bank, 31, 30)
    assert len(loaded) == 3000
    assert _found(loaded.search(queries, 31)) == _brute(queries, bank, ids, 31)
