"""``harmwatch demo-site [--port]``: serve the synthetic demo forum on 127.0.0.1."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo-site", help="serve the synthetic demo forum (crawled by the 'demo-forum' source)"
    )
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--host", default="127.0.0.1")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import threading

    from services.demo_site import start_demo_site

    server = start_demo_site(args.port, args.host)
    print(f"Demo forum at {server.url}/ (Ctrl-C to stop)", flush=True)
    try:
        threading.Event().wait()  # sleep until Ctrl-C
    finally:
        server.shutdown()
    return 0

