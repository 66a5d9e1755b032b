"""``harmwatch train-text`` and ``retrain-from-decisions``: the build-time text commands.

They live with the training code in ``models/``, so the serving stages (``classifiers/``)
never import it. Heavy libraries are imported inside the command functions so that
``harmwatch --help`` stays instant.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    train = subparsers.add_parser(
        "train-text", help="fine-tune the text encoder's top layers with the head, calibrate, "
                           "choose thresholds (~25 min on 2 cores; progress on stderr)")
    train.add_argument("--encoder", type=Path, default=None,
                       help="a local Hugging Face encoder directory (default: models/encoder)")
    train.add_argument("--out", type=Path, default=None, help="default: models/text")
    train.add_argument("--corpus", type=Path, default=None,
                       help="a pass directory or a JSON Lines file with split fields "
                            "(default: models/data/passes)")
    train.add_argument("--mode", choices=("finetune", "frozen"), default="finetune",
                       help="frozen: train only a head on frozen embeddings (a few minutes)")
    train.add_argument("--layers", type=int, default=None, help="top layers to fine-tune (default 6)")
    train.add_argument("--epochs", type=int, default=None, help="fine-tuning epochs (default 4)")
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


def run_train(args: argparse.Namespace) -> int:
    from classifiers.text.artefacts import DEFAULT_ENCODER_DIR, DEFAULT_MODEL_DIR
    from models.train import main as train_main

    argv = ["--encoder", str(args.encoder or DEFAULT_ENCODER_DIR),
            "--out", str(args.out or DEFAULT_MODEL_DIR), "--threads", str(args.threads),
            "--mode", args.mode]
    for flag, value in (("--corpus", args.corpus), ("--layers", args.layers), ("--epochs", args.epochs)):
        if value is not None:
            argv += [flag, str(value)]
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
