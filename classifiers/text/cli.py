"""``harmwatch classify`` and ``eval-text`` (training commands live in ``models/cli.py``).

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

    evaluate = subparsers.add_parser(
        "eval-text", help="score a labelled JSON Lines file at the current thresholds "
                          "(per-language precision/recall/F1, hard negatives queued, misses)")
    evaluate.add_argument("file", type=Path,
                          help='JSON Lines of {"text", "labels": [categories], "lang"?, "kind"?}')
    evaluate.add_argument("--json", action="store_true",
                          help="print the whole report as JSON (macro_f1, recall, hard_negative_rate, ...)")
    evaluate.add_argument("--thresholds", choices=("current", "model"), default="current",
                          help="current: the admins' thresholds from Elasticsearch when it answers, "
                               "else the model's defaults; model: the model's defaults")
    evaluate.add_argument("--model-dir", type=Path, default=None)
    evaluate.add_argument("--rules-only", action="store_true", help="the rules without the model")
    evaluate.add_argument("--int8", action="store_true", help="dynamic int8 encoder")
    evaluate.add_argument("--errors", type=int, default=30,
                          help="misses and false alarms to list (0: none)")
    evaluate.add_argument("--threads", type=int, default=None)
    evaluate.set_defaults(func=run_eval)


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
    from classifiers.text.classifier import TextClassifier

    clf = TextClassifier.load(args.model_dir, threads=args.threads, quantize=args.int8)
    for text, analysis in zip(args.text, clf.classify(args.text), strict=True):
        if args.json:
            print(analysis.model_dump_json())
        else:
            print(format_analysis(text, analysis) + "\n")
    return 0


def current_thresholds(model_defaults: dict[str, float]) -> tuple[dict[str, float], str]:
    """The admins' thresholds from Elasticsearch, or the model's defaults if it does not answer."""
    from harmwatch.documents import get_thresholds
    from harmwatch.search import es_client
    from harmwatch.settings import get_settings

    settings = get_settings()
    try:
        client = es_client(settings, request_timeout=3, max_retries=0)
        return get_thresholds(client, settings), f"current (Elasticsearch {settings.es_url})"
    except Exception as exc:  # noqa: BLE001 - any failure to reach ES means "use the defaults"
        return model_defaults, f"model defaults (Elasticsearch not reachable: {type(exc).__name__})"


def run_eval(args: argparse.Namespace) -> int:
    import numpy as np

    from classifiers.text.evaluation import EvalSetError, evaluate, read_labelled, render_report
    from harmwatch.contract import CATEGORIES

    try:
        posts = read_labelled(args.file)
    except EvalSetError as exc:
        print(f"error: {exc}")
        return 2
    if args.rules_only:
        from classifiers.text.rules_only import RulesOnlyClassifier

        engine = RulesOnlyClassifier()
        defaults: dict[str, float] = {}
    else:
        from classifiers.text.classifier import TextClassifier

        engine = TextClassifier.load(args.model_dir, threads=args.threads, quantize=args.int8)
        defaults = engine.artefacts.thresholds
    if args.thresholds == "model" or args.rules_only:
        thresholds = defaults or dict.fromkeys(CATEGORIES, 0.5)
        source = "model defaults" if defaults else "0.5 (rules only)"
    else:
        thresholds, source = current_thresholds(defaults)
    analyses = engine.classify([p.text for p in posts])
    scores = np.array([[a.scores.get(c, 0.0) for c in CATEGORIES] for a in analyses])
    report = evaluate(posts, scores, thresholds, [a.language for a in analyses],
                      [a.urgent for a in analyses])
    report["model_version"], report["threshold_source"] = engine.model_version, source
    if args.json:
        print(json.dumps(report, indent=2, ensure_ascii=False))
    else:
        print(render_report(report, engine.model_version, source, show_errors=args.errors))
    return 0
