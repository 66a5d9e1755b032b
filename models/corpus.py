"""The training corpus and the independent evaluation set: where they are, how they split.

The corpus (``models/data/passes/*.jsonl``, see ``models/DATASHEET.md``) was written in
independent passes, one file each; a pass is one writer working to one brief (platform and
voice). Splits keep writers' passes whole: every post of a pass is in the same split, so
validation figures measure posts written by other hands in other situations, not
paraphrases of training posts. Validation holds one pass of each of the six writers, each of
a different voice.

The independent evaluation set (``models/eval/independent.jsonl``) was written by two other
writers who never saw the corpus, its briefs or the rules, and frozen (its sha256 below and
in the model card) before any training on the corpus. Nothing is trained or tuned on it.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

MODELS_DIR = Path(__file__).resolve().parent
PASSES_DIR = MODELS_DIR / "data" / "passes"
INDEPENDENT_SET = MODELS_DIR / "eval" / "independent.jsonl"
INDEPENDENT_SHA256 = "acc55dcea37b5ef7cf4f040a9d20aa5ea3ccf0cd265803193356700ac4affb23"
# One pass per writer (A..F), each of a different voice (1..6): see the datasheet.
VALIDATION_PASSES = frozenset({"pA1", "pB2", "pC3", "pD4", "pE5", "pF6"})


def pass_split(pass_id: str) -> str:
    return "validation" if pass_id in VALIDATION_PASSES else "train"


def load_corpus(directory: Path = PASSES_DIR) -> list[dict]:
    """Every post of every pass, each tagged with its ``pass`` and ``split``.

    A text written twice (writers working apart hit the same stock phrase now and then) is
    kept once, in validation if it is there at all, so that no validation post is also a
    training post.
    """
    files = sorted(Path(directory).glob("*.jsonl"))
    if not files:
        raise FileNotFoundError(f"{directory}: no pass files (*.jsonl); see models/DATASHEET.md")
    rows = []
    for path in files:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{number}: not valid JSON ({exc.msg})") from exc
            row["pass"] = path.stem
            row["split"] = pass_split(path.stem)
            rows.append(row)
    return _unique(rows)


def _unique(rows: list[dict]) -> list[dict]:
    key = lambda row: " ".join(row["text"].split()).casefold()  # noqa: E731
    validation = {key(r) for r in rows if r["split"] == "validation"}
    seen: set[str] = set()
    out = []
    for row in rows:
        k = key(row)
        if k in seen or (row["split"] == "train" and k in validation):
            continue
        seen.add(k)
        out.append(row)
    return out


def read_rows(path: Path) -> list[dict]:
    """A JSON Lines file of labelled rows (a training file of one's own, decisions, ...)."""
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines()
            if line.strip()]


def sha256_of(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def check_independent_set(path: Path = INDEPENDENT_SET) -> str:
    """The frozen set's sha256, refusing a file that changed since it was frozen."""
    digest = sha256_of(path)
    if path == INDEPENDENT_SET and digest != INDEPENDENT_SHA256:
        raise ValueError(f"{path}: sha256 {digest} is not the frozen {INDEPENDENT_SHA256}; "
                         f"the independent set must never change (add a new set instead)")
    return digest
