"""Robustness of PDQ, pHash and dHash to the edits people make, and their false positives.

    .venv/bin/python -m bench.robustness                 # full run, rewrites the tables
    .venv/bin/python -m bench.robustness --originals 40 --distractors 1000 --no-write

Builds its own test set, no downloads: scikit-image's bundled photographs plus
procedurally generated images (1/f "pink" noise fields, which have the spectrum of
natural photographs, overlaid with random shapes and text). Every original is edited by
each transformation, re-encoded as JPEG q90 (as a re-upload would be, unless the edit *is*
a JPEG quality), hashed with harmwatch's ``hash_image`` and compared with its original's
hashes; PDQ uses all eight dihedral variants, as the matcher does.

False positives: thousands of further distinct generated images are matched against the
originals as a bank; a distractor counts as a false positive if any of its hashes is
within the threshold of any original.

Extra signal tried: hashing a border-trimmed copy (uniform borders removed) in addition
to the image itself, query side only, so it works with hash lists from elsewhere
(``classifiers.media.trim_border``, which ``hash_image`` now applies to frame 0).
PDQ recall counts a copy whose PDQ quality is below 50 as missed, as the matcher would.

Second extra signal tried, for crops: imagehash's crop-resistant hash (the image cut into
regions by brightness, one dHash per region) on a shortlist. It costs ~100 ms per image,
too much for every image, so it is computed only for a copy whose pHash came near a bank
entry without matching it (8 < distance <= 20), and compared with that entry's own
crop-resistant hash; a match needs at least two regions within Hamming distance 10.

The tables are written between the markers in docs/robustness.md.
"""

from __future__ import annotations

import argparse
import io
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont, ImageOps

from classifiers.banks.signals import (
    CROP_RESISTANT_HAMMING,
    CROP_RESISTANT_MIN_REGIONS,
    CROP_RESISTANT_SHORTLIST,
    SIGNALS,
    crop_resistant_regions,
)
from classifiers.media.hashing import crop_resistant_hash, hash_image

DOC = Path(__file__).resolve().parent.parent / "docs" / "robustness.md"
START, END = "<!-- results:start -->", "<!-- results:end -->"
NATURAL = ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field",
           "immunohistochemistry", "retina", "cat", "camera", "moon", "coins", "horse",
           "clock", "brick", "grass", "gravel", "page", "text", "colorwheel")
SIDE = 320
THRESHOLDS = {"pdq": (31, 40, 52), "phash": (4, 8, 10, 12), "dhash": (4, 8, 10, 12)}
PHASH_MATCH = SIGNALS["phash"].default_threshold
WORDS = ("sample", "watermark", "copyright", "hello", "photo", "share", "2026", "@user",
         "trang", "anh dep", "link in bio")


# -- images ------------------------------------------------------------------------------


def pink_noise(rng: np.random.Generator, side: int) -> np.ndarray:
    """A colour 1/f^alpha field: the power spectrum of natural photographs."""
    fy = np.fft.fftfreq(side)[:, None]
    fx = np.fft.rfftfreq(side)[None, :]
    radius = np.sqrt(fx * fx + fy * fy)
    radius[0, 0] = 1.0
    channels = []
    alpha = rng.uniform(1.6, 3.0)
    for _ in range(3):
        spectrum = rng.normal(size=radius.shape) + 1j * rng.normal(size=radius.shape)
        field = np.fft.irfft2(spectrum / radius ** (alpha / 2), s=(side, side))
        channels.append((field - field.min()) / (np.ptp(field) + 1e-9))
    mix = rng.dirichlet(np.ones(3), size=3)  # correlated channels look less like static
    rgb = np.tensordot(np.stack(channels, -1), mix, axes=1)
    return (np.clip(rgb, 0, 1) * 255).astype(np.uint8)


def generated(seed: int, side: int = SIDE) -> Image.Image:
    """One procedural image: pink-noise background, random shapes, sometimes text."""
    rng = np.random.default_rng([seed, 7])
    img = Image.fromarray(pink_noise(rng, side))
    draw = ImageDraw.Draw(img, "RGBA")
    for _ in range(rng.integers(3, 25)):
        box = sorted(rng.integers(-side // 4, side + side // 4, 2))
        boy = sorted(rng.integers(-side // 4, side + side // 4, 2))
        colour = tuple(int(c) for c in rng.integers(0, 256, 3)) + (int(rng.integers(90, 256)),)
        kind = rng.integers(4)
        if kind == 0:
            draw.ellipse((box[0], boy[0], box[1], boy[1]), fill=colour)
        elif kind == 1:
            draw.rectangle((box[0], boy[0], box[1], boy[1]), fill=colour)
        elif kind == 2:
            points = [tuple(int(v) for v in rng.integers(0, side, 2)) for _ in range(5)]
            draw.polygon(points, fill=colour)
        else:
            draw.line((box[0], boy[0], box[1], boy[1]), fill=colour,
                      width=int(rng.integers(2, 20)))
    if rng.random() < 0.3:
        draw.text((int(rng.integers(0, side // 2)), int(rng.integers(0, side - 40))),
                  str(rng.choice(WORDS)), fill=(255, 255, 255, 220), font=_font(28))
    return img


def natural(name: str) -> Image.Image:
    from skimage import data as skdata

    return Image.fromarray(getattr(skdata, name)()).convert("RGB")


_FONTS: dict[int, ImageFont.ImageFont] = {}


def _font(size: int) -> ImageFont.ImageFont:
    if size not in _FONTS:
        _FONTS[size] = ImageFont.load_default(size=size)
    return _FONTS[size]


# -- transformations ---------------------------------------------------------------------


def _jpeg(quality: int) -> Callable[[Image.Image, np.random.Generator], Image.Image | bytes]:
    def apply(img: Image.Image, rng: np.random.Generator) -> bytes:
        return _encode(img, quality)
    return apply


def _resize(scale: float):
    def apply(img: Image.Image, rng: np.random.Generator) -> Image.Image:
        w, h = img.size
        return img.resize((max(8, int(w * scale)), max(8, int(h * scale))),
                          Image.Resampling.BICUBIC)
    return apply


def _crop(fraction: float):
    """Remove ``fraction`` of the width and of the height, split randomly between sides."""
    def apply(img: Image.Image, rng: np.random.Generator) -> Image.Image:
        w, h = img.size
        dx, dy = int(w * fraction), int(h * fraction)
        left, top = int(rng.integers(0, dx + 1)), int(rng.integers(0, dy + 1))
        return img.crop((left, top, w - (dx - left), h - (dy - top)))
    return apply


def _pad(fraction: float):
    """Add a uniform border ``fraction`` of the size on every side (black, white or colour)."""
    def apply(img: Image.Image, rng: np.random.Generator) -> Image.Image:
        colour = [(0, 0, 0), (255, 255, 255), tuple(int(c) for c in rng.integers(0, 256, 3))]
        border = (int(img.size[0] * fraction), int(img.size[1] * fraction))
        return ImageOps.expand(img, border=border * 2, fill=colour[int(rng.integers(3))])
    return apply


def _rotate(degrees: float):
    def apply(img: Image.Image, rng: np.random.Generator) -> Image.Image:
        return img.rotate(degrees, resample=Image.Resampling.BICUBIC)
    return apply


def _transpose(method: Image.Transpose):
    def apply(img: Image.Image, rng: np.random.Generator) -> Image.Image:
        return img.transpose(method)
    return apply


def _watermark(size_fraction: float):
    def apply(img: Image.Image, rng: np.random.Generator) -> Image.Image:
        out = img.copy()
        draw = ImageDraw.Draw(out, "RGBA")
        size = max(10, int(img.size[1] * size_fraction))
        text = str(rng.choice(WORDS))
        x = int(rng.integers(0, max(1, img.size[0] // 2)))
        y = int(rng.integers(0, max(1, img.size[1] - size)))
        draw.text((x, y), text, fill=(255, 255, 255, 200), font=_font(size),
                  stroke_width=1, stroke_fill=(0, 0, 0, 200))
        return out
    return apply


def _grayscale(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    return img.convert("L").convert("RGB")


TRANSFORMS: dict[str, Callable] = {
    "jpeg q30": _jpeg(30), "jpeg q50": _jpeg(50), "jpeg q75": _jpeg(75), "jpeg q95": _jpeg(95),
    "resize 0.25x": _resize(0.25), "resize 0.5x": _resize(0.5), "resize 1.5x": _resize(1.5),
    "resize 2x": _resize(2.0),
    "crop 2%": _crop(0.02), "crop 5%": _crop(0.05), "crop 10%": _crop(0.10),
    "flip horizontal": _transpose(Image.Transpose.FLIP_LEFT_RIGHT),
    "flip vertical": _transpose(Image.Transpose.FLIP_TOP_BOTTOM),
    "rotate 90": _transpose(Image.Transpose.ROTATE_90),
    "rotate 180": _transpose(Image.Transpose.ROTATE_180),
    "rotate 270": _transpose(Image.Transpose.ROTATE_270),
    "rotate 2 deg": _rotate(2), "rotate 5 deg": _rotate(5), "rotate 10 deg": _rotate(10),
    "text watermark small": _watermark(0.06), "text watermark large": _watermark(0.15),
    "padding 5%": _pad(0.05), "padding 10%": _pad(0.10), "padding 20%": _pad(0.20),
    "grayscale": _grayscale,
}


# -- hashing -----------------------------------------------------------------------------


@dataclass
class Hashed:
    """Hashes of one image as arrays: PDQ variants (8 per frame), pHash, dHash."""

    pdq: np.ndarray  # (frames*8, 32) uint8; empty when PDQ quality < 50
    phash: np.ndarray  # (k, 8)
    dhash: np.ndarray  # (k, 8)
    pdq_quality: int


def _encode(img: Image.Image, quality: int = 90) -> bytes:
    buf = io.BytesIO()
    img.convert("RGB").save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def hashed(data: bytes) -> tuple[Hashed, Hashed]:
    """(the image's own hashes, its hashes plus those of its border-trimmed copy)."""
    h = hash_image(data)
    own = [f for f in h.frames if f.index == 0 and not f.trimmed]
    both = [f for f in h.frames if f.index == 0]
    return _stack(own, h.first.pdq_quality), _stack(both, h.first.pdq_quality)


def _stack(frames: list, quality: int) -> Hashed:
    # The matcher ignores PDQ below quality 50; make such hashes unmatchable here too.
    pdq = [v for f in frames for v in f.pdq_variants] if quality >= 50 else []
    return Hashed(
        pdq=np.array([np.frombuffer(bytes.fromhex(v), np.uint8) for v in pdq]).reshape(-1, 32),
        phash=np.array([np.frombuffer(bytes.fromhex(f.phash), np.uint8) for f in frames]),
        dhash=np.array([np.frombuffer(bytes.fromhex(f.dhash), np.uint8) for f in frames]),
        pdq_quality=quality,
    )


def _min_distance(query: np.ndarray, bank: np.ndarray) -> np.ndarray:
    """For each bank row, the smallest distance to any of the query's rows."""
    if not len(query):
        return np.full(len(bank), 10_000)
    x = np.bitwise_xor(query[:, None, :], bank[None, :, :])
    return np.unpackbits(x, axis=-1).sum(axis=-1).min(axis=0)


def crh_match(query: str | None, entry: str | None) -> bool:
    """The matcher's own rule (classifiers.banks.signals), so the report measures what ships."""
    return bool(query and entry) and (
        crop_resistant_regions(query, entry) >= CROP_RESISTANT_MIN_REGIONS)


def shortlist_match(data: bytes, phash_distances: np.ndarray,
                    refs: list[str | None]) -> bool:
    """pHash match, or a crop-resistant match with an entry whose pHash came near."""
    if phash_distances.min() <= PHASH_MATCH:
        return True
    near = np.flatnonzero(phash_distances <= CROP_RESISTANT_SHORTLIST)
    if not len(near):
        return False
    query = crop_resistant_hash(data)
    return any(crh_match(query, refs[i]) for i in near)


# -- the experiment ----------------------------------------------------------------------


def originals(count: int) -> list[Image.Image]:
    images = [natural(n) for n in NATURAL][:count]
    seed = 0
    while len(images) < count:
        images.append(generated(seed))
        seed += 1
    return images


def run(n_originals: int, n_distractors: int) -> dict:
    started = time.time()
    refs = originals(n_originals)
    ref_hashes = [hash_image(_png(img)).first for img in refs]
    bank = {alg: np.array([np.frombuffer(bytes.fromhex(getattr(f, alg)), np.uint8)
                           for f in ref_hashes]) for alg in ("pdq", "phash", "dhash")}
    crh_refs = [crop_resistant_hash(_png(img)) for img in refs]
    shortlisted: dict[str, list[bool]] = {}
    # recall[transform][signal][alg] = list of distances to the own original
    distances: dict[str, dict[str, dict[str, list[int]]]] = {}
    for name, transform in TRANSFORMS.items():
        rows: dict[str, dict[str, list[int]]] = {"plain": {}, "trim": {}}
        for i, img in enumerate(refs):
            rng = np.random.default_rng([i, len(name)])
            out = transform(img, rng)
            data = out if isinstance(out, bytes) else _encode(out)
            plain, trim = hashed(data)
            for alg in ("pdq", "phash", "dhash"):
                own = bank[alg][i : i + 1]
                for signal, h in (("plain", plain), ("trim", trim)):
                    d = int(_min_distance(getattr(h, alg), own)[0])
                    rows[signal].setdefault(alg, []).append(d)
            own_phash = np.array([rows["plain"]["phash"][-1]])
            shortlisted.setdefault(name, []).append(
                shortlist_match(data, own_phash, [crh_refs[i]]))
        distances[name] = rows
        print(f"  {name}: done ({time.time() - started:.0f} s)", file=sys.stderr, flush=True)
    # false positives: distinct generated images against the originals as a bank
    fp: dict[str, dict[str, list[int]]] = {"plain": {}, "trim": {}}
    fp_shortlist, crh_checked = 0, 0
    for k in range(n_distractors):
        data = _encode(generated(1_000_000 + k))
        plain, trim = hashed(data)
        phash_distances = _min_distance(plain.phash, bank["phash"])
        crh_checked += int(phash_distances.min() > PHASH_MATCH
                           and phash_distances.min() <= CROP_RESISTANT_SHORTLIST)
        fp_shortlist += shortlist_match(data, phash_distances, crh_refs)
        for alg in ("pdq", "phash", "dhash"):
            for signal, h in (("plain", plain), ("trim", trim)):
                d = int(_min_distance(getattr(h, alg), bank[alg]).min())
                fp[signal].setdefault(alg, []).append(d)
        if k % 1000 == 999:
            print(f"  distractors: {k + 1} ({time.time() - started:.0f} s)", file=sys.stderr,
                  flush=True)
    return {"distances": distances, "fp": fp, "seconds": time.time() - started,
            "shortlisted": shortlisted, "fp_shortlist": fp_shortlist, "crh_checked": crh_checked,
            "originals": n_originals, "natural": min(n_originals, len(NATURAL)),
            "distractors": n_distractors}


def tables(result: dict) -> str:
    headers = [f"{alg} <={t}" for alg, ts in THRESHOLDS.items() for t in ts]
    lines = [
        f"Test set: {result['originals']} originals ({result['natural']} scikit-image "
        f"photographs, the rest generated), {len(TRANSFORMS)} transformations, "
        f"{result['distractors']:,} distinct distractor images; run time "
        f"{result['seconds'] / 60:.1f} min.", "",
        "### Recall per transformation (share of edited copies within the threshold)", "",
        "| transformation | " + " | ".join(headers) + " | pdq <=31 + trim |",
        "|---|" + "---|" * (len(headers) + 1),
    ]
    for name, rows in result["distances"].items():
        cells = [f"{np.mean(np.array(rows['plain'][alg]) <= t):.0%}"
                 for alg, ts in THRESHOLDS.items() for t in ts]
        cells.append(f"{np.mean(np.array(rows['trim']['pdq']) <= 31):.0%}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", "### False positives (share of distractors matching any original)", "",
              "| signal | " + " | ".join(headers) + " |", "|---|" + "---|" * len(headers)]
    pairs = result["distractors"] * result["originals"]
    for signal in ("plain", "trim"):
        cells = []
        for alg, ts in THRESHOLDS.items():
            values = np.array(result["fp"][signal][alg])
            cells += [f"{np.mean(values <= t):.2%} ({int(np.sum(values <= t))})" for t in ts]
        label = "image" if signal == "plain" else "image + trimmed copy"
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += ["", f"Pairs compared for false positives: {pairs:,} per algorithm "
              "(PDQ: each with 8 variants)."]
    trim_rows = [(n, r) for n, r in result["distances"].items() if n.startswith(("padding",
                                                                                  "crop"))]
    lines += ["", "### Border trimming: recall on padding and crops (PDQ <=31 / pHash <=8)", "",
              "| transformation | PDQ | PDQ + trim | pHash | pHash + trim |", "|---|---|---|---|---|"]
    for name, rows in trim_rows:
        lines.append(
            f"| {name} | {np.mean(np.array(rows['plain']['pdq']) <= 31):.0%} "
            f"| {np.mean(np.array(rows['trim']['pdq']) <= 31):.0%} "
            f"| {np.mean(np.array(rows['plain']['phash']) <= 8):.0%} "
            f"| {np.mean(np.array(rows['trim']['phash']) <= 8):.0%} |")
    lines += ["", f"### Crop-resistant hash on a shortlist (pHash <={PHASH_MATCH}, or pHash "
              f"<={CROP_RESISTANT_SHORTLIST} and >= {CROP_RESISTANT_MIN_REGIONS} regions within "
              f"{CROP_RESISTANT_HAMMING})", "",
              "| transformation | pHash | pHash + crop-resistant shortlist |", "|---|---|---|"]
    for name, rows in result["distances"].items():
        lines.append(f"| {name} | {np.mean(np.array(rows['plain']['phash']) <= PHASH_MATCH):.0%} "
                     f"| {np.mean(result['shortlisted'][name]):.0%} |")
    phash_fp = int(np.sum(np.array(result["fp"]["plain"]["phash"]) <= PHASH_MATCH))
    lines += ["", f"False positives among {result['distractors']:,} distractors: pHash "
              f"{phash_fp}, pHash + crop-resistant shortlist {result['fp_shortlist']} "
              f"({result['crh_checked']:,} distractors came near enough to be checked)."]
    return "\n".join(lines)


def write_doc(text: str) -> None:
    doc = DOC.read_text(encoding="utf-8")
    if START not in doc or END not in doc:
        raise SystemExit(f"{DOC}: markers {START} / {END} not found")
    pattern = re.compile(re.escape(START) + ".*?" + re.escape(END), re.S)
    DOC.write_text(pattern.sub(lambda _: f"{START}\n{text}\n{END}", doc), encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--originals", type=int, default=200)
    parser.add_argument("--distractors", type=int, default=10_000)
    parser.add_argument("--no-write", action="store_true", help="Print, do not update docs.")
    args = parser.parse_args(argv)
    text = tables(run(args.originals, args.distractors))
    print(text)
    if not args.no_write:
        write_doc(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
