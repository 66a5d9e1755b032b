"""``harmwatch consume analyzer|indexer``: run a pipeline stage, in one or N processes."""

from __future__ import annotations

import argparse

STAGES = ("analyzer", "indexer")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "consume", help="run the analyzer or the indexer (Kafka consumer group stages)"
    )
    parser.add_argument("stage", choices=STAGES)
    parser.add_argument("--workers", type=int, default=1,
                        help="processes in the consumer group (default 1)")
    parser.add_argument("--metrics-port", type=int, default=0,
                        help="Prometheus /metrics port of worker 0; worker i uses port+i "
                             "(default 0: no endpoint)")
    parser.add_argument("--until-idle", type=float, default=None, metavar="SECONDS",
                        help="exit once no message has arrived for this long")
    parser.add_argument("--max-records", type=int, default=None,
                        help="largest batch per poll, written and committed together (default: "
                             "analyzer 32, one model batch, for latency; indexer 500, one bulk)")
    parser.add_argument("--group", default=None,
                        help="consumer group id (default: the stage name, 'analyzer'/'indexer')")
    parser.add_argument("--log-level", default="INFO")
    parser.set_defaults(func=consume)


def consume(args: argparse.Namespace) -> int:
    from consumers.workers import WorkerSpec, run_workers

    if args.workers < 1:
        raise SystemExit("--workers must be at least 1")
    spec = WorkerSpec(stage=args.stage, metrics_port=args.metrics_port,
                      until_idle=args.until_idle, max_records=args.max_records,
                      log_level=args.log_level, group=args.group or args.stage)
    return run_workers(spec, args.workers)
