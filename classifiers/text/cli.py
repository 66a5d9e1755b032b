"""``harmwatch classify``, ``harmwatch train-text`` and ``harmwatch retrain-from-decisions``.

Heavy libraries (torch, transformers) are imported inside the command functions so that
``harmwatch --help`` stays instant.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    classify = subparsers.add_parser(
        "classify", help="score text for child-safety harms (scores, rule hits, model version)")
    classify.add_argument("text", nargs="+", help="one or more texts (quote each)")
    classify.add_argument("--model-dir", type=Path, default=None)
    classify.add_argument("--threads", type=int, default=None)
    classify.add_argument("--int8", action="store_true", help="dynamic int8 encoder")
    classify.add_argument("--json", action="store_true", help="print TextAnalysis JSON")
    classify.set_defaults(func=run_classify)

    train = subparsers.add_parser("train-text", help="train and calibrate the text model head")
    train.add_argument("--encoder", type=Path, default=None,
                       help="a local Hugging Face encoder directory (default: models/encoder)")
    train.add_argument("--out", type=Path, default=None, help="default: models/text")
    train.add_argument("--threads", type=int, default=2)
    train.set_defaults(func=run_train)

    retrain = subparsers.add_parser(
        "retrain-from-decisions",
        help="retrain on analysts' decisions from Elasticsearch and compare with the current model")
    retrain.add_argument("--candidate-dir", type=Path, default=None,
                         help="where the candidate is written (default: var/text-candidate)")
    retrain.add_argument("--promote", action="store_true",
                         help="replace models/text if the candidate is not worse on the fixed test")
    retrain.add_argument("--tolerance", type=float, default=0.01)
    retrain.add_argument("--threads", type=int, default=2)
    retrain.set_defaults(func=run_retrain)


def format_analysis(text: str, analysis) -> str:
    """Human-readable scores and highlighted rule hits for one text."""
    lines = [f"text: {text}", f"language: {analysis.language}   model: {analysis.model_version}"
             f"   rules: {analysis.rules_version}"]
    for category, score in sorted(analysis.scores.items(), key=lambda kv: -kv[1]):
        lines.append(f"  {category:<20} {score:.3f}  {'#' * round(score * 20)}")
    for hit in analysis.rule_hits:
        lines.append(f"  rule {hit.rule_id} ({hit.category}, w={hit.weight}) "
                     f"[{hit.start}:{hit.end}] {hit.matched!r}")
    if not analysis.rule_hits:
        lines.append("  no rule hits")
    return "\n".join(lines)


def run_classify(args: argparse.Namespace) -> int:
    from classifiers.text import TextClassifier

    clf = TextClassifier.load(args.model_dir, threads=args.threads, quantize=args.int8)
    for text, analysis in zip(args.text, clf.classify(args.text), strict=True):
        if args.json:
            print(analysis.model_dump_json())
        else:
            print(format_analysis(text, analysis) + "\n")
    return 0


def run_train(args: argparse.Namespace) -> int:
    from classifiers.text.artefacts import DEFAULT_ENCODER_DIR, DEFAULT_MODEL_DIR
    from models.train import main as train_main

    argv = ["--encoder", str(args.encoder or DEFAULT_ENCODER_DIR),
            "--out", str(args.out or DEFAULT_MODEL_DIR), "--threads", str(args.threads)]
    return train_main(argv)


def run_retrain(args: argparse.Namespace) -> int:
    from harmwatch.search import es_client
    from harmwatch.settings import get_settings
    from models.retrain import fetch_decisions, retrain_from_decisions

    settings = get_settings()
    decisions = fetch_decisions(es_client(settings), index=settings.index_name("items"))
    if not decisions:
        print("No confirmed or dismissed items yet; nothing to learn from.")
        return 1
    candidate = args.candidate_dir or settings.var_dir / "text-candidate"
    report = retrain_from_decisions(decisions, candidate, threads=args.threads,
                                    promote=args.promote, tolerance=args.tolerance)
    print(json.dumps(report, indent=2))
    return 0 if report["promotable"] else 3
