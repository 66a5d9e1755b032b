"""Learn from analysts: export their decisions from Elasticsearch, retrain, compare, promote.

An analyst who confirms an item as, say, ``grooming`` has labelled a post; one who dismisses
it has labelled a hard negative. :func:`fetch_decisions` is the only place that knows the
shape of the item documents (``harmwatch.documents.ITEMS_MAPPING``: alias
``harmwatch-items``, the post's ``text``, ``decision.status`` in {confirmed, dismissed},
``decision.category``) so that it can follow the indexer's mapping.

Decisions are split by a hash of the text (stable across runs): four in five join the
training data, one in five is held out as "new" evaluation data. The candidate is trained
the same way as the current model (fine-tuned or head only, as its manifest says) on the
corpus plus the new training rows, and compared with the current model on the corpus's
validation passes *and* the held-out decisions, each model at its own default thresholds.
Nothing changes in ``models/text/`` unless ``--promote`` is given and the candidate does not
lose more than ``--tolerance`` macro-F1 on the validation passes. The independent set is not
used here: choosing between models on it would be tuning against it.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from classifiers.text.artefacts import (
    CALIBRATION_FILE,
    DEFAULT_MODEL_DIR,
    HEAD_FILE,
    MANIFEST_FILE,
    OVERLAY_FILE,
    load_artefacts,
    resolve_encoder_dir,
)
from classifiers.text.evaluation import category_metrics
from harmwatch.contract import CATEGORIES
from models.corpus import PASSES_DIR, load_corpus
from models.train import label_matrix
from models.train import train as train_model

ITEMS_ALIAS = "harmwatch-items"


def fetch_decisions(client: Any, index: str = ITEMS_ALIAS, limit: int = 50_000) -> list[dict]:
    """Analysts' final decisions as labelled rows ``{"text", "labels"}``.

    The one function to adjust if the item mapping changes. It reads at most 10,000
    decisions (one search page); paging with ``search_after`` needs a sort field the item
    mapping does not define yet.
    """
    query = {"bool": {"filter": [{"terms": {"decision.status": ["confirmed", "dismissed"]}}]}}
    rows = []
    response = client.search(index=index, query=query, size=min(limit, 10_000),
                             source=["text", "decision.status", "decision.category"])
    for hit in response["hits"]["hits"]:
        src = hit["_source"]
        text = src.get("text") or ""
        decision = src.get("decision") or {}
        category = decision.get("category")
        if not text.strip():
            continue
        if decision.get("status") == "confirmed" and category in CATEGORIES:
            rows.append({"text": text, "labels": [category]})
        elif decision.get("status") == "dismissed":
            rows.append({"text": text, "labels": []})
    return rows


def assign_splits(decisions: list[dict]) -> list[dict]:
    """Tag each decision ``train`` or ``new_test`` by a stable hash of its text."""
    out = []
    for row in decisions:
        bucket = int(hashlib.sha256(row["text"].encode()).hexdigest()[:8], 16) % 5
        out.append({**row, "lang": "?", "kind": "analyst_decision", "template": "decision",
                    "split": "new_test" if bucket == 0 else "train"})
    return out


def score_with(model_dir: Path, sets: dict[str, list[dict]], threads: int | None) -> dict[str, np.ndarray]:
    """Calibrated scores of every set under the model in ``model_dir`` (loaded once), as the
    analyzer scores them."""
    from classifiers.text.classifier import TextClassifier

    clf = TextClassifier.load(model_dir, threads=threads)
    return {name: np.array([[a.scores[c] for c in CATEGORIES]
                            for a in clf.classify([r["text"] for r in rows])])
            for name, rows in sets.items()}


def compare(current: Path, candidate: Path, eval_sets: dict[str, list[dict]],
            threads: int | None) -> dict:
    """Macro metrics of both models on every non-empty evaluation set, at their own defaults."""
    sets = {name: rows for name, rows in eval_sets.items() if rows}
    report: dict[str, dict] = {name: {} for name in sets}
    for which, path in (("current", current), ("candidate", candidate)):
        thresholds = load_artefacts(path).thresholds
        for name, scores in score_with(path, sets, threads).items():
            report[name][which] = category_metrics(scores, label_matrix(sets[name]), thresholds)["macro"]
    return report


def retrain_from_decisions(decisions: list[dict], candidate_dir: Path,
                           current_dir: Path = DEFAULT_MODEL_DIR, threads: int | None = 2,
                           promote: bool = False, tolerance: float = 0.01,
                           corpus_dir: Path = PASSES_DIR) -> dict:
    """Train a candidate on corpus + decisions, report the change, promote if asked.

    The candidate uses the current model's encoder, text prefix and kind of training
    (fine-tuned layers or head only), so the two differ only in what they learnt.
    """
    tagged = assign_splits(decisions)
    current = load_artefacts(current_dir)
    corpus = load_corpus(corpus_dir)
    combined = candidate_dir / "training_data.jsonl"
    candidate_dir.mkdir(parents=True, exist_ok=True)
    with combined.open("w", encoding="utf-8") as fh:
        for row in corpus + [r for r in tagged if r["split"] == "train"]:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    layers = int(current.manifest["encoder"].get("fine_tuned_layers", 0))
    artefacts, _ = train_model(combined, candidate_dir, resolve_encoder_dir(current.manifest),
                               prefix=current.manifest["encoder"]["prefix"], threads=threads,
                               write_card=False, mode="finetune" if layers else "frozen",
                               layers=layers or 1, independent=None)
    eval_sets = {"validation": [r for r in corpus if r["split"] == "validation"],
                 "new_decisions": [r for r in tagged if r["split"] == "new_test"]}
    report = {"candidate_version": artefacts.version,
              "current_version": current.version,
              "decisions": {"train": sum(r["split"] == "train" for r in tagged),
                            "new_test": len(eval_sets["new_decisions"])},
              "metrics": compare(current_dir, candidate_dir, eval_sets, threads)}
    fixed = report["metrics"]["validation"]
    report["delta_macro_f1_validation"] = fixed["candidate"]["f1"] - fixed["current"]["f1"]
    report["promotable"] = report["delta_macro_f1_validation"] >= -tolerance
    report["promoted"] = False
    if promote and report["promotable"]:
        (current_dir / OVERLAY_FILE).unlink(missing_ok=True)
        for name in (HEAD_FILE, CALIBRATION_FILE, OVERLAY_FILE, MANIFEST_FILE, "metrics.json",
                     "pr_curves.png"):
            if (candidate_dir / name).exists():
                shutil.copy2(candidate_dir / name, current_dir / name)
        report["promoted"] = True
    (candidate_dir / "comparison.json").write_text(json.dumps(report, indent=2) + "\n")
    return report
