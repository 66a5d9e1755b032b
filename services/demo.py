"""``harmwatch demo``: the whole pipeline on this machine, end to end, with real services.

It drives each stage through its own command, exactly as an operator would, so the
demo exercises the same code paths as production and no stage imports another:

    demo site (127.0.0.1:8090) → crawl → posts.raw → analyzer → posts.flagged
    → indexer → Elasticsearch → review UI (printed URL and first admin login)
"""

from __future__ import annotations

import argparse
import secrets
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from harmwatch.settings import Settings, get_settings

DEMO_SITE_PORT = 8090
DEMO_USERS = (("admin", "admin"), ("analyst", "analyst"), ("liaison", "liaison"))


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo", help="start everything, crawl the demo site through the pipeline, serve the UI"
    )
    parser.add_argument("--no-serve", action="store_true",
                        help="stop after indexing instead of serving the review UI")
    parser.set_defaults(func=run)


def harmwatch(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run one harmwatch command as its own process, echoing it like a shell would."""
    print(f"$ harmwatch {' '.join(args)}", flush=True)
    return subprocess.run([sys.executable, "-m", "harmwatch.cli", *args], check=check)


def demo_passwords(settings: Settings) -> dict[str, str]:
    """One password per demo user, generated on the first run and kept in var/."""
    path = settings.var_dir / "demo-logins.txt"
    if path.is_file():
        pairs = (line.split(" ", 1) for line in path.read_text().splitlines() if " " in line)
        return dict(pairs)
    passwords = {user: secrets.token_urlsafe(9) for user, _ in DEMO_USERS}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{user} {pw}\n" for user, pw in passwords.items()))
    path.chmod(0o600)
    return passwords


def wait_for_http(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.3)
    raise SystemExit(f"{url} did not answer within {timeout:.0f}s")


def start_demo_site(log_dir: Path) -> subprocess.Popen:
    log_dir.mkdir(parents=True, exist_ok=True)
    log = open(log_dir / "demo-site.log", "ab")  # noqa: SIM115 - lives as long as the site
    site = subprocess.Popen(
        [sys.executable, "-m", "harmwatch.cli", "demo-site", "--port", str(DEMO_SITE_PORT)],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
    )
    wait_for_http(f"http://127.0.0.1:{DEMO_SITE_PORT}/")
    return site


def run(args: argparse.Namespace) -> int:
    settings = get_settings()
    started = time.monotonic()
    harmwatch("services", "up")
    harmwatch("topics")
    harmwatch("indices")
    passwords = demo_passwords(settings)
    for user, role in DEMO_USERS:
        harmwatch("users", "create", user, "--role", role, "--password", passwords[user],
                  "--if-missing")

    site = start_demo_site(settings.var_dir / "logs")
    try:
        harmwatch("crawl", "demo-forum")
    finally:
        site.terminate()
    harmwatch("consume", "analyzer", "--until-idle", "15")
    harmwatch("consume", "indexer", "--until-idle", "10")
    print(f"\nDemo pipeline finished in {time.monotonic() - started:.0f}s.")

    url = f"http://{settings.ui_host}:{settings.ui_port}/"
    print("\n" + "=" * 72)
    print(f"  Review UI:  {url}")
    for user, role in DEMO_USERS:
        print(f"  {role:8s} login:  {user} / {passwords[user]}")
    print(f"  (logins are kept in {settings.var_dir / 'demo-logins.txt'})")
    print("=" * 72 + "\n", flush=True)
    if args.no_serve:
        return 0
    return harmwatch("ui", check=False).returncode
