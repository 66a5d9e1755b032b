"""PDQ matching: harmwatch's index against python-threatexchange's (Meta's HMA) index.

    .venv/bin/python -m bench.bench_matching            # 1M and 10M, appends to RESULTS.md
    .venv/bin/python -m bench.bench_matching --sizes 100000 --no-append   # a quick look

Both indexes get the same random bank of N PDQ hashes and the same queries: images whose
eight PDQ variants are looked up (variant 0 is a bank entry with 0-39 bits flipped, the
other seven unrelated, as rotated/flipped hashes are). Each index is built and queried
in its own child process, one thread each (OMP_NUM_THREADS=1), so resident memory and
speed are not mixed up. Recall is measured against the planted neighbours at distance
<= 31, and both indexes are checked against a brute-force scan on a sample of queries.

Build time includes formatting the hashes as hex strings, the form both indexes take
their input in. Times are CPU time of the child process (this machine is shared; CPU time
is what "per core" means and is far less disturbed by other load than wall time).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import statistics
import subprocess
import sys
import time

import numpy as np

RADIUS = 31
BRUTE_FORCE_SAMPLE = 64  # query hashes checked against a full scan of the bank
VARIANTS = 8
SEED = 20261129


def _rss_bytes() -> int:
    with open("/proc/self/statm") as fp:
        return int(fp.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _bank(n: int) -> np.ndarray:
    return np.random.default_rng(SEED).integers(0, 256, size=(n, 32), dtype=np.uint8)


def _queries(bank: np.ndarray, images: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(query hashes (images*8, 32), planted entry per image, planted distance per image)."""
    planted = np.zeros(images, dtype=np.int64)
    distance = np.zeros(images, dtype=np.int64)
    queries = np.zeros((images, VARIANTS, 32), dtype=np.uint8)
    for i in range(images):
        # One generator per image: the first k images are the same whatever the count.
        rng = np.random.default_rng([SEED, i])
        entry, d = int(rng.integers(len(bank))), int(rng.integers(0, 40))
        planted[i], distance[i] = entry, d
        queries[i] = rng.integers(0, 256, size=(VARIANTS, 32), dtype=np.uint8)
        row = bank[entry].copy()
        for bit in rng.choice(256, size=int(d), replace=False):
            row[bit // 8] ^= np.uint8(1 << (bit % 8))
        queries[i, 0] = row
    return queries.reshape(-1, 32), planted, distance


def _hexes(bank: np.ndarray, step: int = 1_000_000):
    for start in range(0, len(bank), step):
        block = bank[start : start + step].tobytes().hex()
        for i in range(0, len(block), 64):
            yield block[i : i + 64]


def _brute_force(bank: np.ndarray, queries: np.ndarray) -> set[tuple[int, int]]:
    from classifiers.banks.index import popcount_distance

    found = set()
    for start in range(0, len(bank), 50_000):
        block = bank[start : start + 50_000]
        d = popcount_distance(queries[:, None, :], block[None, :, :])
        for q, e in zip(*np.nonzero(d <= RADIUS), strict=True):
            found.add((int(q), int(e) + start))
    return found


# -- workers (run in child processes) ----------------------------------------------------


class _Ours:
    name = "harmwatch"

    def build(self, bank: np.ndarray) -> None:
        from classifiers.banks.index import Segment, hex_to_bytes

        rows = []
        batch: list[str] = []
        for h in _hexes(bank):
            batch.append(h)
            if len(batch) == 1_000_000:
                rows.append(hex_to_bytes(batch, 256))
                batch = []
        rows.append(hex_to_bytes(batch, 256))
        hashes = np.concatenate(rows)
        del rows
        self.segment = Segment.build(hashes, np.arange(len(hashes)))
        self.bytes_per_hash = self.segment.nbytes / len(hashes)

    def lookup(self, query_hexes: list[str], per_call: int) -> set[tuple[int, int]]:
        from classifiers.banks.index import hex_to_bytes

        found = set()
        for start in range(0, len(query_hexes), per_call):
            hits = self.segment.search(hex_to_bytes(query_hexes[start : start + per_call], 256),
                                       RADIUS)
            found.update(zip((hits.query + start).tolist(), hits.entry_id.tolist(), strict=True))
        return found


class _Peer:
    name = "threatexchange"

    def build(self, bank: np.ndarray) -> None:
        from threatexchange.signal_type.pdq.pdq_index import PDQIndex

        self.index = PDQIndex((h, i) for i, h in enumerate(_hexes(bank)))
        self.bytes_per_hash = None

    def lookup(self, query_hexes: list[str], per_call: int) -> set[tuple[int, int]]:
        found = set()
        for q, h in enumerate(query_hexes):
            found.update((q, m.metadata) for m in self.index.query(h))
        return found


def _worker(kind: str, n: int, images: int, repeats: int, per_call: int) -> dict:
    impl = _Ours() if kind == "ours" else _Peer()
    bank = _bank(n)
    queries, planted, distance = _queries(bank, images)
    query_hexes = [q.tobytes().hex() for q in queries]
    gc.collect()
    before = _rss_bytes()
    started = time.process_time()
    impl.build(bank)
    build_s = time.process_time() - started
    gc.collect()
    index_bytes = _rss_bytes() - before  # the bank array existed before and after
    rates, wall_rates = [], []
    found: set[tuple[int, int]] = set()
    for _ in range(repeats):
        started, wall_started = time.process_time(), time.perf_counter()
        found = impl.lookup(query_hexes, per_call)
        rates.append(len(query_hexes) / (time.process_time() - started))
        wall_rates.append(len(query_hexes) / (time.perf_counter() - wall_started))
    wanted = {(i * VARIANTS, int(e)) for i, (e, d) in enumerate(zip(planted, distance,
                                                                    strict=True)) if d <= RADIUS}
    sample_found = sorted((q, e) for q, e in found if q < BRUTE_FORCE_SAMPLE)
    return {
        "index": impl.name, "n": n, "build_s": build_s, "lookups_per_s": rates,
        "median_lookups_per_s": statistics.median(rates),
        "median_wall_lookups_per_s": statistics.median(wall_rates), "rss_index_bytes": index_bytes,
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "bytes_per_hash_arrays": impl.bytes_per_hash,
        "recall_planted": len(wanted & found) / max(1, len(wanted)), "planted": len(wanted),
        "sample_found": sample_found,
    }


def _run_child(kind: str, n: int, images: int, repeats: int, per_call: int,
               timeout: int) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "bench.bench_matching", "--worker", kind, "--sizes", str(n),
           "--images", str(images), "--repeats", str(repeats), "--per-call", str(per_call)]
    try:
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"index": kind, "n": n, "error": f"did not finish within {timeout} s"}
    if out.returncode != 0:
        tail = out.stderr.strip().splitlines()[-1:] or [f"exit {out.returncode}"]
        return {"index": kind, "n": n, "error": tail[0]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def _table(results: list[dict]) -> str:
    lines = [
        "| N | index | mode | build CPU s | lookups per CPU-s (median) | wall lookups/s "
        "| index RSS | B/hash (RSS) | B/hash (arrays) | recall@31 | = brute force |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        arrays = f"{r['bytes_per_hash_arrays']:.0f}" if r.get("bytes_per_hash_arrays") else "—"
        if "error" in r:
            lines.append(f"| {r['n']:,} | {r['index']} | {r.get('mode', '')} | — | — | — | — "
                         f"| — | — | — | {r['error']} |")
            continue
        lines.append(
            f"| {r['n']:,} | {r['index']} | {r['mode']} | {r['build_s']:.1f} "
            f"| {r['median_lookups_per_s']:,.0f} | {r['median_wall_lookups_per_s']:,.0f} "
            f"| {r['rss_index_bytes'] / 2**20:,.0f} MiB | {r['rss_index_bytes'] / r['n']:.0f} "
            f"| {arrays} | {r['recall_planted']:.1%} | {r['matches_brute_force_sample']} |")
    return "\n".join(lines)


def _ratios(results: list[dict]) -> str:
    lines = []
    for n in sorted({r["n"] for r in results}):
        peer = next((r for r in results if r["n"] == n and r["index"] == "threatexchange"
                     and "error" not in r), None)
        for r in results:
            if r["n"] != n or r["index"] != "harmwatch" or "error" in r or peer is None:
                continue
            lines.append(
                f"- N={n:,}, {r['mode']}: {r['median_lookups_per_s'] / peer['median_lookups_per_s']:.1f}x "
                f"the peer's lookups/s, {peer['rss_index_bytes'] / r['rss_index_bytes']:.1f}x less "
                f"memory, build {peer['build_s'] / r['build_s']:.1f}x faster")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000000,10000000")
    parser.add_argument("--images", type=int, default=250, help="Images queried (x8 lookups).")
    parser.add_argument("--peer-images", type=int, default=100,
                        help="Images for the peer (it is slower; rates are per lookup).")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--per-call", type=int, default=VARIANTS)
    parser.add_argument("--timeout", type=int, default=1500)
    parser.add_argument("--no-append", action="store_true")
    parser.add_argument("--worker", choices=("ours", "peer"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    if args.worker:
        print(json.dumps(_worker(args.worker, sizes[0], args.images, args.repeats,
                                 args.per_call)))
        return 0
    results = []
    for n in sizes:
        sample = _queries(_bank(n), args.peer_images)[0][:BRUTE_FORCE_SAMPLE]
        truth = sorted(_brute_force(_bank(n), sample))
        for kind, images, per_call, mode in (
            ("ours", args.images, VARIANTS, "per image (8 hashes/call)"),
            ("ours", args.images, args.images * VARIANTS, "batched (all in 1 call)"),
            ("peer", args.peer_images, 1, "per hash (its API)"),
        ):
            result = _run_child(kind, n, images, args.repeats, per_call, args.timeout)
            result["mode"] = mode
            found = [tuple(pair) for pair in result.pop("sample_found", [])]
            result["matches_brute_force_sample"] = found == truth if "error" not in result else None
            print(json.dumps(result), file=sys.stderr, flush=True)
            results.append(result)
    body = (f"{_table(results)}\n\n{_ratios(results)}\n\nQueries: {args.images} images "
            f"(peer: {args.peer_images}) x 8 PDQ variants, radius {RADIUS}, {args.repeats} "
            "repeats, medians. Each index runs in its own process on one thread; speeds are "
            "per CPU-second of that process (the machine is shared, so wall-clock rates are "
            f"noisier; load average at the end: {os.getloadavg()[0]:.1f}). Index RSS is the "
            "growth of the process's resident memory while building (the random bank array "
            "excluded); B/hash (arrays) is the size of harmwatch's index arrays.")
    print(body)
    if not args.no_append:
        from bench._results import append_results

        append_results("PDQ matching: harmwatch vs python-threatexchange",
                       ".venv/bin/python -m bench.bench_matching " + " ".join(argv or sys.argv[1:]),
                       body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
