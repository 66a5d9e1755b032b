"""How well the text classifier does on a labelled set, at the thresholds the queue uses.

One place for the arithmetic that ``harmwatch eval-text``, training (``models/train.py``),
retraining from decisions and ``bench_text`` all report, so that a figure means the same
thing wherever it is printed.

A labelled set is JSON Lines of ``{"text", "labels": [categories], "lang"?, "kind"?}``:

* a post is **queued** when any category's score is at or over its threshold, or when the
  classifier marked it urgent (the self-harm path always reaches the queue);
* a harmful post (non-empty ``labels``) **reaches its own category** when at least one of
  its labelled categories is at or over that category's threshold;
* ``kind: "hard_negative"`` posts (labels empty by definition) are counted apart: their
  queued share is the false-alarm rate analysts feel;
* per-category precision, recall and F1 are computed per language (the row's ``lang`` when
  given, else the classifier's language id) and over all rows. Macro-F1 is the mean over
  the categories that have at least one labelled post in that group: a category without
  support has no recall to speak of (its false alarms still count in the other figures).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from harmwatch.contract import CATEGORIES

HARD_NEGATIVE = "hard_negative"
MAX_LISTED_ERRORS = 200


class EvalSetError(ValueError):
    """A labelled file that cannot be read; the message names the line and the fix."""


@dataclass(frozen=True)
class LabelledPost:
    text: str
    labels: tuple[str, ...]
    lang: str | None = None
    kind: str | None = None
    id: str | None = None

    @property
    def harmful(self) -> bool:
        return bool(self.labels)


def read_labelled(path: Path) -> list[LabelledPost]:
    """Read a JSON Lines labelled set, refusing (with the line number) anything malformed."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise EvalSetError(f"{path}: cannot read the file ({exc}).") from exc
    except UnicodeDecodeError as exc:
        raise EvalSetError(f"{path}: not UTF-8 text ({exc}).") from exc
    posts = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        posts.append(_parse_row(line, f"{path}:{number}"))
    if not posts:
        raise EvalSetError(f"{path}: no labelled posts (one JSON object per line expected).")
    return posts


def _parse_row(line: str, where: str) -> LabelledPost:
    try:
        row = json.loads(line)
    except json.JSONDecodeError as exc:
        raise EvalSetError(f"{where}: not valid JSON ({exc.msg}).") from exc
    if not isinstance(row, dict):
        raise EvalSetError(f"{where}: expected a JSON object with \"text\" and \"labels\".")
    text, labels = row.get("text"), row.get("labels")
    if not isinstance(text, str):
        raise EvalSetError(f"{where}: \"text\" must be a string.")
    if not isinstance(labels, list) or not all(isinstance(label, str) for label in labels):
        raise EvalSetError(f"{where}: \"labels\" must be a list of category names "
                           f"(empty for a harmless post).")
    unknown = sorted(set(labels) - set(CATEGORIES))
    if unknown:
        raise EvalSetError(f"{where}: unknown categories {unknown}; use {list(CATEGORIES)}.")
    if row.get("kind") == HARD_NEGATIVE and labels:
        raise EvalSetError(f"{where}: a hard_negative has no labels.")
    optional = {k: row.get(k) if isinstance(row.get(k), str) else None for k in ("lang", "kind", "id")}
    return LabelledPost(text=text, labels=tuple(dict.fromkeys(labels)), **optional)


def label_matrix(posts: list[LabelledPost]) -> np.ndarray:
    """(n, C) 0/1 matrix of the posts' labels in ``CATEGORIES`` order."""
    return np.array([[c in p.labels for c in CATEGORIES] for p in posts], dtype=np.float64).reshape(
        len(posts), len(CATEGORIES))


def average_precision(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the precision-recall curve, step-wise (as scikit-learn computes it)."""
    order = np.argsort(-scores, kind="stable")
    hits = labels[order]
    if hits.sum() == 0:
        return float("nan")
    precision = np.cumsum(hits) / np.arange(1, len(hits) + 1)
    return float((precision * hits).sum() / hits.sum())


def _prf(tp: int, fp: int, fn: int) -> dict[str, float]:
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    return {"precision": p, "recall": r, "f1": 2 * p * r / (p + r) if p + r else 0.0}


def category_metrics(scores: np.ndarray, labels: np.ndarray, thresholds: dict[str, float]) -> dict:
    """Per-category precision, recall, F1, AP and support, and the macro means."""
    out: dict[str, dict] = {}
    for j, cat in enumerate(CATEGORIES):
        pred, gold = scores[:, j] >= thresholds[cat], labels[:, j] > 0.5
        tp, fp, fn = int((pred & gold).sum()), int((pred & ~gold).sum()), int((~pred & gold).sum())
        out[cat] = {**_prf(tp, fp, fn), "ap": average_precision(scores[:, j], gold.astype(float)),
                    "support": int(gold.sum()), "tp": tp, "fp": fp, "fn": fn}
    supported = [c for c in CATEGORIES if out[c]["support"]]
    out["macro"] = {k: float(np.mean([out[c][k] for c in supported])) if supported else 0.0
                    for k in ("precision", "recall", "f1", "ap")}
    clipped = np.clip(scores, 1e-6, 1 - 1e-6)
    out["macro"]["log_loss"] = float(-np.mean(labels * np.log(clipped)
                                              + (1 - labels) * np.log(1 - clipped))) if len(labels) else 0.0
    return out


def over_threshold(scores: np.ndarray, thresholds: dict[str, float]) -> np.ndarray:
    """(n, C) booleans: which categories each post reaches."""
    return scores >= np.array([thresholds[c] for c in CATEGORIES])


def evaluate(posts: list[LabelledPost], scores: np.ndarray, thresholds: dict[str, float],
             languages: list[str] | None = None, urgent: list[bool] | None = None) -> dict[str, Any]:
    """Everything ``eval-text`` reports, as a JSON-ready dict (see the module docstring).

    ``languages`` are the classifier's language ids, used for rows without ``lang``;
    ``urgent`` marks posts the classifier sent to the queue as urgent whatever the scores.
    """
    n = len(posts)
    languages = languages or ["other"] * n
    urgent = urgent or [False] * n
    labels = label_matrix(posts)
    reached = over_threshold(scores, thresholds)
    queued = reached.any(axis=1) | np.array(urgent, dtype=bool)
    own = (reached & (labels > 0.5)).any(axis=1)
    groups = [p.lang or lang for p, lang in zip(posts, languages, strict=True)]
    harmful = np.array([p.harmful for p in posts])
    hard = np.array([p.kind == HARD_NEGATIVE for p in posts])
    per_language = {}
    for group in sorted(set(groups)):
        mask = np.array([g == group for g in groups])
        per_language[group] = {"posts": int(mask.sum()),
                               **category_metrics(scores[mask], labels[mask], thresholds)}
    overall = category_metrics(scores, labels, thresholds)
    macro_f1 = {g: per_language[g]["macro"]["f1"] for g in per_language}
    macro_f1["all"] = overall["macro"]["f1"]
    for required in ("vi", "en"):
        macro_f1.setdefault(required, None)
    return {
        "posts": n, "harmful": int(harmful.sum()), "hard_negatives": int(hard.sum()),
        "thresholds": dict(thresholds),
        "macro_f1": macro_f1,
        "recall": {
            "own_category": _share(own[harmful]),
            "own_category_count": [int(own[harmful].sum()), int(harmful.sum())],
            **{c: overall[c]["recall"] for c in CATEGORIES},
        },
        "hard_negative_rate": _share(queued[hard]),
        "hard_negatives_queued": int(queued[hard].sum()),
        "queued_harmless_rate": _share(queued[~harmful]),
        "categories": overall,
        "per_language": per_language,
        "misses": _errors(posts, scores, np.flatnonzero(harmful & ~own), groups),
        "false_alarms": _errors(posts, scores, np.flatnonzero(~harmful & queued), groups),
    }


def _share(mask: np.ndarray) -> float | None:
    return float(mask.mean()) if mask.size else None


def _errors(posts: list[LabelledPost], scores: np.ndarray, rows: np.ndarray,
            groups: list[str]) -> list[dict[str, Any]]:
    out = []
    for i in rows[:MAX_LISTED_ERRORS]:
        top = int(np.argmax(scores[i]))
        out.append({"id": posts[i].id, "lang": groups[i], "labels": list(posts[i].labels),
                    "kind": posts[i].kind, "top_category": CATEGORIES[top],
                    "top_score": round(float(scores[i, top]), 3),
                    "own_scores": {c: round(float(scores[i, CATEGORIES.index(c)]), 3)
                                   for c in posts[i].labels},
                    "text": posts[i].text})
    return out


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


def render_report(report: dict[str, Any], model_version: str, threshold_source: str,
                  show_errors: int = 30) -> str:
    """The plain-text report ``harmwatch eval-text`` prints."""
    rec = report["recall"]
    lines = [f"model {model_version}; {report['posts']} posts ({report['harmful']} harmful, "
             f"{report['hard_negatives']} hard negatives); thresholds: {threshold_source}",
             "  " + "  ".join(f"{c}={report['thresholds'][c]:.3f}" for c in CATEGORIES), ""]
    for group in [*sorted(report["per_language"]), "all"]:
        block = report["categories"] if group == "all" else report["per_language"][group]
        size = report["posts"] if group == "all" else block["posts"]
        lines += [f"{group} ({size} posts)",
                  f"  {'category':<20} {'precision':>9} {'recall':>7} {'F1':>6} {'support':>8}"]
        for cat in CATEGORIES:
            m = block[cat]
            lines.append(f"  {cat:<20} {m['precision']:>9.3f} {m['recall']:>7.3f} {m['f1']:>6.3f} "
                         f"{m['support']:>8}")
        lines += [f"  {'macro-F1':<20} {block['macro']['f1']:>24.3f}", ""]
    hit, total = rec["own_category_count"]
    lines += [
        "macro-F1: " + ", ".join(f"{k} {_fmt(v)}" for k, v in report["macro_f1"].items()),
        f"harmful posts reaching their own category: {hit} of {total} ({_fmt(rec['own_category'])})",
        f"self_harm recall: {_fmt(rec['self_harm'])}",
        f"hard negatives queued: {report['hard_negatives_queued']} of {report['hard_negatives']} "
        f"({_fmt(report['hard_negative_rate'])})",
    ]
    for title, key in (("missed (harmful, own category below threshold)", "misses"),
                       ("false alarms (harmless, queued)", "false_alarms")):
        errors = report[key]
        if not errors or show_errors <= 0:
            continue
        lines += ["", f"{title}: {len(errors)}{'+' if len(errors) >= MAX_LISTED_ERRORS else ''}"]
        for err in errors[:show_errors]:
            own = ", ".join(f"{c} {s:.2f}" for c, s in err["own_scores"].items()) or "—"
            text = " ".join(err["text"].split())
            lines.append(f"  [{err['lang']}] {err['id'] or ''} own: {own}; top: {err['top_category']} "
                         f"{err['top_score']:.2f} | {text[:140]}")
    return "\n".join(lines)
