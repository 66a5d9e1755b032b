"""``harmwatch ui``, ``harmwatch users create|disable|list|seed-demo``, ``harmwatch audit verify|export``.

Account changes made here are audited like those made in the UI, with the operating-system
user as the actor (``cli:<login>``), so the trail has no gap for work done on the server.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from pathlib import Path

from harmwatch.settings import get_settings


def register(subparsers: argparse._SubParsersAction) -> None:
    ui = subparsers.add_parser("ui", help="serve the review UI on ui_host:ui_port")
    ui.add_argument("--host", help="override settings.ui_host")
    ui.add_argument("--port", type=int, help="override settings.ui_port")
    ui.add_argument("--workers", type=int, default=1)
    ui.add_argument("--compile-messages", action="store_true",
                    help="write the .mo catalogues next to the .po files and exit")
    ui.set_defaults(func=serve)

    users = subparsers.add_parser("users", help="create, disable or list review UI accounts")
    actions = users.add_subparsers(dest="users_action", required=True)
    create = actions.add_parser("create", help="create an account (password prompted or stdin)")
    create.add_argument("username")
    create.add_argument("--role", required=True, choices=["analyst", "liaison", "admin"])
    create.add_argument("--locale", default="vi", choices=["vi", "en"])
    create.add_argument("--password-stdin", action="store_true",
                        help="read the password from the first line of stdin")
    create.add_argument("--password", help="the password (scripts and the demo; visible to "
                        "other local users in the process list — prefer --password-stdin)")
    create.add_argument("--if-missing", action="store_true",
                        help="succeed without changes when the account already exists")
    create.set_defaults(func=users_create)
    disable = actions.add_parser("disable", help="disable an account and end its sessions")
    disable.add_argument("username")
    disable.set_defaults(func=users_disable)
    listing = actions.add_parser("list", help="list accounts")
    listing.set_defaults(func=users_list)
    seed = actions.add_parser("seed-demo", help="demo accounts analyst, liaison, admin")
    seed.add_argument("--password-stdin", action="store_true")
    seed.set_defaults(func=users_seed_demo)

    audit = subparsers.add_parser("audit", help="verify or export the audit trail")
    audit_actions = audit.add_subparsers(dest="audit_action", required=True)
    verify = audit_actions.add_parser("verify", help="check the hash chain; names the first "
                                      "broken record (exit 1)")
    verify.add_argument("--file", type=Path, help="verify an exported JSON Lines file instead")
    verify.set_defaults(func=audit_verify)
    export = audit_actions.add_parser("export", help="write the whole chain to stdout or --out")
    export.add_argument("--format", choices=["jsonl", "csv"], default="jsonl")
    export.add_argument("--out", type=Path)
    export.set_defaults(func=audit_export)


def _cli_actor():
    from review_ui.audit import Actor

    return Actor(f"cli:{getpass.getuser()}", "admin", "127.0.0.1", "harmwatch-cli")


def _client():
    from harmwatch.search import es_client
    from review_ui.indices import ensure_ui_indices

    settings = get_settings()
    client = es_client(settings)
    ensure_ui_indices(client, settings)
    return client, settings


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("Password: ")
    if first != getpass.getpass("Repeat: "):
        raise SystemExit("harmwatch: passwords differ")
    return first


def serve(args: argparse.Namespace) -> int:
    from review_ui import i18n

    if args.compile_messages:
        for path in i18n.write_compiled():
            print(f"wrote {path}")
        return 0
    import uvicorn

    settings = get_settings()
    host, port = args.host or settings.ui_host, args.port or settings.ui_port
    print(f"harmwatch review UI on http://{host}:{port}/ (Ctrl-C stops)")
    uvicorn.run("review_ui.app:create_app", factory=True, host=host, port=port,
                workers=args.workers, proxy_headers=False, server_header=False,
                log_level=os.environ.get("HARMWATCH_UI_LOG_LEVEL", "warning"))
    return 0


def users_create(args: argparse.Namespace) -> int:
    from review_ui import accounts, audit

    client, settings = _client()
    if args.if_missing and accounts.get_user(client, settings, args.username):
        print(f"{args.username} exists; unchanged")
        return 0
    password = args.password or _read_password(args.password_stdin)
    try:
        user = accounts.create_user(client, settings, args.username, password, args.role,
                                    locale=args.locale, created_by=_cli_actor().username)
    except accounts.AccountError as exc:
        print(f"harmwatch: {exc}", file=sys.stderr)
        return 1
    audit.record(client, settings, _cli_actor(), "user_create", user.username,
                 {"role": user.role})
    print(f"created {user.username} ({user.role})")
    return 0


def users_disable(args: argparse.Namespace) -> int:
    from review_ui import accounts, audit
    from review_ui.app import secret_key
    from review_ui.security import SessionStore

    client, settings = _client()
    try:
        accounts.update_user(client, settings, args.username, disabled=True)
    except accounts.AccountError as exc:
        print(f"harmwatch: {exc}", file=sys.stderr)
        return 1
    SessionStore(client, settings, secret_key(settings)).delete_for_user(args.username)
    audit.record(client, settings, _cli_actor(), "user_disable", args.username)
    print(f"disabled {args.username}")
    return 0


def users_list(args: argparse.Namespace) -> int:
    from review_ui import accounts

    client, settings = _client()
    print(f"{'username':<24} {'role':<8} {'state':<9} {'locale':<6} last login")
    for user in accounts.list_users(client, settings):
        state = "disabled" if user.disabled else "active"
        print(f"{user.username:<24} {user.role:<8} {state:<9} {user.locale:<6} "
              f"{user.last_login_at or '-'}")
    return 0


def users_seed_demo(args: argparse.Namespace) -> int:
    from review_ui import accounts, audit

    client, settings = _client()
    password = _read_password(args.password_stdin)
    for user in accounts.seed_demo_users(settings, password):
        audit.record(client, settings, _cli_actor(), "user_create", user.username,
                     {"role": user.role, "demo": True})
        print(f"{user.username} ({user.role}) ready")
    return 0


def audit_verify(args: argparse.Namespace) -> int:
    from review_ui import audit

    if args.file:
        with args.file.open(encoding="utf-8") as handle:
            result = audit.verify_lines(handle)
    else:
        client, settings = _client()
        result = audit.verify(client, settings)
    if result.ok:
        print(f"audit chain intact: {result.checked} records")
        return 0
    print(f"audit chain BROKEN at record {result.broken_seq}: {result.reason} "
          f"({result.checked} records before it verified)")
    return 1


def audit_export(args: argparse.Namespace) -> int:
    from review_ui import audit

    client, settings = _client()
    audit.record(client, settings, _cli_actor(), "audit_export", None,
                 {"format": args.format})
    out = args.out.open("w", encoding="utf-8", newline="") if args.out else sys.stdout
    try:
        for line in audit.export_lines(client, settings, args.format):
            out.write(line)
    finally:
        if args.out:
            out.close()
    return 0
