"""Image hashing speed: all of harmwatch's hashes together vs plain pHash and plain PDQ.

    .venv/bin/python -m bench.bench_hashing              # appends to bench/RESULTS.md

Per-core figures (one process, one thread, CPU time) for 1 MP and 12 MP JPEGs (q90) made
from scikit-image's sample photographs. Compared, each from the JPEG bytes:

* harmwatch ``hash_image``: MD5+SHA-1+SHA-256, PDQ with quality and 8 variants, pHash,
  dHash, with JPEG draft-mode decoding;
* ``imagehash.phash(Image.open(f))``: one 64-bit pHash from a full decode;
* plain ``pdqhash.compute`` on the fully decoded RGB image: one PDQ hash.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import time
from collections.abc import Callable

os.environ.setdefault("OMP_NUM_THREADS", "1")

import imagehash  # noqa: E402 - thread settings must precede numeric imports
import numpy as np  # noqa: E402
import pdqhash  # noqa: E402
from PIL import Image  # noqa: E402
from skimage import data as skdata  # noqa: E402

from classifiers.media.hashing import hash_image  # noqa: E402

SIZES = {"1 MP": (1155, 866), "12 MP": (4000, 3000)}
SOURCES = ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field")


def _jpegs(size: tuple[int, int]) -> list[bytes]:
    out = []
    for name in SOURCES:
        img = Image.fromarray(getattr(skdata, name)()).convert("RGB")
        buf = io.BytesIO()
        img.resize(size, Image.Resampling.BICUBIC).save(buf, "JPEG", quality=90)
        out.append(buf.getvalue())
    return out


def _plain_phash(data: bytes) -> object:
    return imagehash.phash(Image.open(io.BytesIO(data)))


def _plain_pdq(data: bytes) -> object:
    rgb = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    return pdqhash.compute(rgb)


METHODS: dict[str, Callable[[bytes], object]] = {
    "harmwatch hash_image (all hashes)": hash_image,
    "imagehash.phash(Image.open(f))": _plain_phash,
    "pdqhash.compute(full decode)": _plain_pdq,
}


def _rate(fn: Callable[[bytes], object], images: list[bytes], repeats: int) -> float:
    """Median over repeats of images per CPU-second for the whole set.

    CPU time of this (single-threaded) process is what "per core" means, and unlike wall
    time it is barely disturbed by other work on a shared machine.
    """
    fn(images[0])  # warm caches and lazy imports
    rates = []
    for _ in range(repeats):
        started = time.process_time()
        for data in images:
            fn(data)
        rates.append(len(images) / (time.process_time() - started))
    return statistics.median(rates)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-append", action="store_true")
    args = parser.parse_args(argv)
    lines = ["| image | method | images per CPU-second (median) | ours vs it |",
             "|---|---|---|---|"]
    for label, size in SIZES.items():
        images = _jpegs(size)
        rates = {name: _rate(fn, images, args.repeats) for name, fn in METHODS.items()}
        ours = rates["harmwatch hash_image (all hashes)"]
        for name, rate in rates.items():
            ratio = "—" if rate == ours else f"{ours / rate:.1f}x"
            lines.append(f"| {label} JPEG | {name} | {rate:.1f} | {ratio} |")
            print(lines[-1], flush=True)
    body = "\n".join(lines) + (
        f"\n\n{len(SOURCES)} scikit-image photographs per size, JPEG q90, {args.repeats} "
        "repeats, one thread. 'ours vs it' > 1 means hash_image (which computes every "
        "hash) is faster than that single hash alone.")
    if not args.no_append:
        from bench._results import append_results

        append_results("Image hashing speed",
                       ".venv/bin/python -m bench.bench_hashing " + " ".join(argv or sys.argv[1:]),
                       body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
