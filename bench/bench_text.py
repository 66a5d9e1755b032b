"""Text classifier throughput and accuracy vs a plain ``transformers`` pipeline.

One command: ``.venv/bin/python -m bench.bench_text``. On one CPU thread (so the figures are
posts/s per core) it times, at batch sizes 1, 16 and 64:

* ``harmwatch fp32`` / ``harmwatch int8``: ``TextClassifier.classify`` end to end, i.e.
  normalisation, language id, rules, length-bucketed encoder batches under
  ``torch.inference_mode`` through a traced graph (int8: dynamically quantised Linear
  layers, down-projections in bfloat16 where the CPU has it natively), head, calibration;
* ``pipeline fp32``: ``transformers.pipeline("text-classification")`` on the *same* model
  (encoder + mean pooling + head wrapped as a sequence classifier) and the same texts,
  already normalised and prefixed for it, so it does strictly less work than ours (it
  truncates long posts at the window; ours reads every window).

Each figure is the median of three interleaved runs. Macro F1 on the frozen independent set
(``models/eval/independent.jsonl``) is computed from each scorer's outputs through the same
calibration, at the model's default thresholds, so the accuracy cost of int8 is visible.
Results are printed and appended to ``bench/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch

from classifiers.text.classifier import TextClassifier
from classifiers.text.encoder import mean_pool
from classifiers.text.evaluation import category_metrics, label_matrix, read_labelled
from classifiers.text.language import normalize_and_detect
from classifiers.text.rules import evidence
from harmwatch.contract import CATEGORIES
from models.corpus import INDEPENDENT_SET, check_independent_set

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
HEADER = "# Benchmark results\n\nAppend-only: each run adds a dated section with its command.\n"
BATCH_SIZES = (1, 16, 64)


def pipeline_for(clf: TextClassifier):
    """A stock text-classification pipeline around the classifier's own encoder and head."""
    from transformers import PreTrainedModel, pipeline
    from transformers.modeling_outputs import SequenceClassifierOutput
    from transformers.utils import logging as hf_logging

    # The pipeline warns that it does not know the wrapper class; it runs it all the same.
    hf_logging.set_verbosity_error()

    encoder, head = clf.encoder.model, clf.artefacts.head

    class MeanPoolClassifier(PreTrainedModel):
        config_class = type(encoder.config)
        base_model_prefix = "encoder"
        _supports_sdpa = True  # attention runs inside the wrapped encoder, as configured there

        def __init__(self, config) -> None:
            super().__init__(config)
            self.encoder, self.head = encoder, head

        def forward(self, input_ids=None, attention_mask=None, **_):
            # Eager, as a stock pipeline runs a model (ours goes through a traced graph).
            hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask)
            pooled = mean_pool(hidden.last_hidden_state, attention_mask)
            return SequenceClassifierOutput(logits=self.head(pooled))

    config = copy.deepcopy(encoder.config)
    config.id2label = dict(enumerate(CATEGORIES))
    config.label2id = {c: i for i, c in enumerate(CATEGORIES)}
    config.problem_type = "multi_label_classification"
    model = MeanPoolClassifier(config).eval()
    return pipeline("text-classification", model=model, tokenizer=clf.encoder.tokenizer,
                    device=-1, top_k=None, function_to_apply="sigmoid", truncation=True,
                    max_length=clf.encoder.max_length)


def pipeline_scores(pipe, clf: TextClassifier, texts: list[str], batch_size: int) -> np.ndarray:
    """Calibrated scores from the pipeline's sigmoid outputs (rules and calibration added)."""
    prepared = [normalize_and_detect(t) for t in texts]
    inputs = [clf.encoder.prefix + norm.text for norm, _ in prepared]
    outputs = pipe(inputs, batch_size=batch_size)
    prob = np.array([[next(o["score"] for o in out if o["label"] == c) for c in CATEGORIES]
                     for out in outputs])
    rule_ev = np.array([[evidence(clf.rules.match(t, norm))[c] for c in CATEGORIES]
                        for t, (norm, _) in zip(texts, prepared, strict=True)])
    return clf.artefacts.calibrator.apply(prob, rule_ev)


def ours_scores(clf: TextClassifier, texts: list[str], batch_size: int) -> np.ndarray:
    clf.batch_size = batch_size
    return np.array([[a.scores[c] for c in CATEGORIES] for a in clf.classify(texts)])


def measure(scorers: dict, texts: list[str], batch_size: int, repeats: int) -> dict[str, float]:
    """Median posts/s per scorer. Runs are interleaved (each repeat runs every scorer once),
    so that load from other processes on a shared machine hits all scorers alike."""
    for fn in scorers.values():
        fn(texts[:batch_size], batch_size)  # warm-up
    rates: dict[str, list[float]] = {name: [] for name in scorers}
    for _ in range(repeats):
        for name, fn in scorers.items():
            started = time.perf_counter()
            fn(texts, batch_size)
            rates[name].append(len(texts) / (time.perf_counter() - started))
    return {name: statistics.median(values) for name, values in rates.items()}


def run(n_texts: int, repeats: int) -> str:
    torch.set_num_threads(1)
    check_independent_set()
    posts = read_labelled(INDEPENDENT_SET)
    texts, labels = [p.text for p in posts], label_matrix(posts)
    timing = texts[:: max(1, len(texts) // n_texts)][:n_texts]
    fp32 = TextClassifier.load(threads=1)
    int8 = TextClassifier.load(threads=1, quantize=True)
    pipe = pipeline_for(fp32)
    scorers = {
        "pipeline fp32": lambda t, b: pipeline_scores(pipe, fp32, t, b),
        "harmwatch fp32": lambda t, b: ours_scores(fp32, t, b),
        "harmwatch int8": lambda t, b: ours_scores(int8, t, b),
    }
    thresholds = fp32.artefacts.thresholds
    f1 = {name: category_metrics(fn(texts, 16), labels, thresholds)["macro"]["f1"]
          for name, fn in scorers.items()}
    load_before = os.getloadavg()[0]
    rates = {(name, b): rate for b in BATCH_SIZES
             for name, rate in measure(scorers, timing, b, repeats).items()}
    load = f"1-min load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after"
    lines = ["| scorer | macro F1 (independent) | " + " | ".join(f"posts/s b={b}" for b in BATCH_SIZES)
             + " | " + " | ".join(f"× pipeline b={b}" for b in BATCH_SIZES) + " |",
             "|---" * (2 + 2 * len(BATCH_SIZES)) + "|"]
    for name in scorers:
        speed = " | ".join(f"{rates[name, b]:.1f}" for b in BATCH_SIZES)
        ratio = " | ".join(f"{rates[name, b] / rates['pipeline fp32', b]:.2f}"
                           for b in BATCH_SIZES)
        lines.append(f"| {name} | {f1[name]:.3f} | {speed} | {ratio} |")
    return "\n".join([
        f"## Text classifier, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "",
        f"Command: `.venv/bin/python -m bench.bench_text` (torch threads = 1, so posts/s per "
        f"core; {len(timing)} independent-set posts timed, median of {repeats} runs; F1 on all "
        f"{len(texts)} independent-set posts at the model's default thresholds). "
        f"Model `{fp32.model_version}`, torch {torch.__version__}; "
        f"{os.cpu_count()} CPUs shared with other work ({load}).",
        "",
        *lines,
        "",
    ])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=128, help="posts timed per run")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-append", action="store_true", help="print only")
    args = parser.parse_args(argv)
    report = run(args.texts, args.repeats)
    print(report)
    if not args.no_append:
        with RESULTS.open("a", encoding="utf-8") as fh:  # append only: others write here too
            fh.write(("" if fh.tell() else HEADER) + "\n" + report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
