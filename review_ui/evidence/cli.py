"""``harmwatch evidence …`` and ``harmwatch cases …``: cases, packs, keys, sealing, retention.

Commands that change or export evidence act *as* a named account (``--as``) that must be
an enabled liaison or admin user, so the CLI obeys the same rule as the UI and every
action lands in the audit trail under a real name. ``evidence verify`` needs no
account, no settings and no Elasticsearch: it runs wherever the pack is.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from review_ui.evidence.verify import Report

CASE_ROLES = ("liaison", "admin")
# ``harmwatch evidence verify`` exit codes (docs/formats/evidence-pack.md); 2 is a key or
# certificate that cannot be loaded. An officer's script can tell handling noise (3) from
# damaged or unsigned evidence (1).
VERIFY_OK, VERIFY_FAILED, VERIFY_ADDITIONS = 0, 1, 3


def register(subparsers: argparse._SubParsersAction) -> None:
    _register_evidence(subparsers)
    _register_cases(subparsers)


def _as_user(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--as", dest="as_user", required=True, metavar="USERNAME",
                        help="the liaison or admin account this action is recorded under")


def _register_evidence(subparsers: argparse._SubParsersAction) -> None:
    evidence = subparsers.add_parser("evidence", help="evidence packs: export, verify, keys")
    sub = evidence.add_subparsers(dest="evidence_command", metavar="ACTION", required=True)

    export = sub.add_parser("export", help="write a case's signed evidence pack (ZIP)")
    export.add_argument("case_id")
    export.add_argument("--out", type=Path, required=True, help="where to write PACK.zip")
    export.add_argument("--metadata-only", action="store_true",
                        help="hashes and metadata only: no media, no page snapshots")
    export.add_argument("--lang", choices=("vi", "en"), default="vi",
                        help="language of summary.html")
    _as_user(export)
    export.set_defaults(func=cmd_export)

    verify = sub.add_parser("verify", help="check a pack's files, signature and time-stamp")
    verify.add_argument("pack", type=Path)
    verify.add_argument("--public-key", type=Path,
                        help="the service's public key (PEM); without it the pack's own key "
                             "is used, which proves integrity but not origin")
    verify.add_argument("--tsa-cert", type=Path,
                        help="the time-stamp authority's certificate (PEM) to pin")
    verify.set_defaults(func=cmd_verify)

    public = sub.add_parser("public-key", help="print the service's signing public key (PEM)")
    public.add_argument("--out", type=Path, help="write it to this file instead")
    public.set_defaults(func=cmd_public_key)

    seal = sub.add_parser("seal", help="encrypt the media of confirmed items at rest")
    _as_user(seal)
    seal.set_defaults(func=cmd_seal)

    retention = sub.add_parser("retention", help="delete evidence of cases past retention")
    retention.add_argument("--closed-days", type=int, default=None,
                           help="days a closed case's evidence is kept (default 730)")
    retention.add_argument("--exported-days", type=int, default=None,
                           help="days an exported case's evidence is kept (default: forever)")
    retention.add_argument("--apply", action="store_true",
                           help="delete for real (default: only list what is due)")
    _as_user(retention)
    retention.set_defaults(func=cmd_retention)


def _register_cases(subparsers: argparse._SubParsersAction) -> None:
    cases = subparsers.add_parser("cases", help="liaison cases: create, add items, close")
    sub = cases.add_subparsers(dest="cases_command", metavar="ACTION", required=True)

    listing = sub.add_parser("list", help="list cases, newest first")
    listing.add_argument("--status", choices=("open", "exported", "closed"))
    listing.set_defaults(func=cmd_cases_list)

    show = sub.add_parser("show", help="print one case as JSON")
    show.add_argument("case_id")
    show.set_defaults(func=cmd_cases_show)

    create = sub.add_parser("create", help="open a new case")
    create.add_argument("--title", required=True)
    create.add_argument("--reference", default="", help="the police reference number")
    create.add_argument("--agency", default="", help="the requesting agency")
    create.add_argument("--officer", default="", help="the officer in charge")
    create.add_argument("--notes", default="")
    _as_user(create)
    create.set_defaults(func=cmd_cases_create)

    for name, helptext in (("add", "add confirmed or escalated items"),
                           ("remove", "remove items")):
        action = sub.add_parser(name, help=helptext)
        action.add_argument("case_id")
        action.add_argument("item_ids", nargs="+")
        _as_user(action)
        action.set_defaults(func=cmd_cases_items, action=name)

    close = sub.add_parser("close", help="close a case (starts its retention period)")
    close.add_argument("case_id")
    _as_user(close)
    close.set_defaults(func=cmd_cases_close)


def _context(args: argparse.Namespace, need_user: bool = True):  # type: ignore[no-untyped-def]
    """(client, settings, actor), refusing accounts that may not handle cases."""
    from harmwatch.search import es_client
    from harmwatch.settings import get_settings
    from review_ui.accounts import get_user
    from review_ui.audit import Actor
    from review_ui.evidence.cases import ensure_case_indices

    settings = get_settings()
    client = es_client(settings)
    ensure_case_indices(client, settings)
    actor = None
    if need_user:
        user = get_user(client, settings, args.as_user)
        if user is None or user.disabled or user.role not in CASE_ROLES:
            raise SystemExit(f"harmwatch: {args.as_user!r} is not an enabled liaison or admin "
                             "account (create one with `harmwatch users create`)")
        actor = Actor(user.username, user.role, None, "harmwatch-cli")
    return client, settings, actor


def cmd_export(args: argparse.Namespace) -> int:
    from review_ui.evidence.cases import CaseError
    from review_ui.evidence.pack import export_case

    client, settings, actor = _context(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    partial = args.out.with_name(args.out.name + ".partial")
    try:
        with partial.open("wb") as target:
            result = export_case(client, settings, args.case_id, target, actor,
                                 metadata_only=args.metadata_only, language=args.lang)
    except CaseError as exc:
        partial.unlink(missing_ok=True)
        print(f"harmwatch: {exc}", file=sys.stderr)
        return 1
    partial.replace(args.out)
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(f"wrote {args.out}: {result.kind} pack {result.pack_id}, {result.items} items, "
          f"{result.files} files, {result.bytes} bytes; manifest SHA-256 "
          f"{result.manifest_sha256}; time-stamp: {result.timestamp}")
    if result.missing_items:
        print(f"items not found: {', '.join(result.missing_items)}", file=sys.stderr)
    if result.withheld_items:
        print(f"items withheld (no longer confirmed or escalated): "
              f"{', '.join(result.withheld_items)}", file=sys.stderr)
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from cryptography import x509

    from review_ui.evidence.verify import load_public_key, verify_pack

    try:
        key = load_public_key(args.public_key.read_bytes()) if args.public_key else None
        tsa = x509.load_pem_x509_certificate(args.tsa_cert.read_bytes()) if args.tsa_cert \
            else None
    except (OSError, ValueError) as exc:
        print(f"harmwatch: cannot load a key or certificate: {exc}", file=sys.stderr)
        return 2
    report = verify_pack(args.pack, key, tsa)
    for note in report.notes:
        print(f"note: {note}")
    for problem in report.problems:
        print(f"FAIL {problem}")
    for name in report.additions:
        print(f"ADDED {name}: in the pack but not in the manifest (not part of the evidence)")
    print(f"{args.pack}: {_verdict(report)}; {report.files_checked} files checked")
    return VERIFY_OK if report.ok else VERIFY_ADDITIONS if report.intact else VERIFY_FAILED


def _verdict(report: Report) -> str:
    if report.ok:
        return "OK"
    if report.intact:
        return f"evidence intact, {len(report.additions)} entries added since the export"
    return f"FAILED ({len(report.problems)} problems)"


def cmd_public_key(args: argparse.Namespace) -> int:
    from harmwatch.settings import get_settings
    from review_ui.evidence.keys import fingerprint, load_signing_key, public_key_pem

    key = load_signing_key(get_settings())
    pem = public_key_pem(key)
    if args.out:
        args.out.write_bytes(pem)
        print(f"wrote {args.out}")
    else:
        sys.stdout.write(pem.decode())
    print(f"fingerprint (SHA-256): {fingerprint(key.public_key())}", file=sys.stderr)
    return 0


def cmd_seal(args: argparse.Namespace) -> int:
    from harmwatch.blobstore import get_blob_store
    from review_ui.evidence.atrest import seal_confirmed

    client, settings, actor = _context(args)
    count = seal_confirmed(client, settings, get_blob_store(settings), actor)
    print(f"sealed {count} blobs")
    return 0


def cmd_retention(args: argparse.Namespace) -> int:
    from harmwatch.blobstore import get_blob_store
    from review_ui.evidence.retention import apply_retention

    client, settings, actor = _context(args)
    days = {k: v for k, v in (("closed", args.closed_days), ("exported", args.exported_days))
            if v is not None}
    run = apply_retention(client, settings, get_blob_store(settings), actor, days,
                          dry_run=not args.apply)
    verb = "deleted" if args.apply else "due (dry run; --apply deletes)"
    print(f"cases {verb}: {', '.join(run.due_cases) or 'none'}; blobs deleted: "
          f"{run.deleted_blobs}; items kept for other cases: {len(run.kept_items)}")
    return 0


def cmd_cases_list(args: argparse.Namespace) -> int:
    from review_ui.evidence.cases import list_cases

    client, settings, _ = _context(args, need_user=False)
    for case in list_cases(client, settings, args.status):
        print(f"{case['case_id']}  {case['status']:<8}  {case.get('reference') or '-':<16}  "
              f"{case['title']}")
    return 0


def cmd_cases_show(args: argparse.Namespace) -> int:
    from review_ui.evidence.cases import CaseNotFound, get_case

    client, settings, _ = _context(args, need_user=False)
    try:
        case = get_case(client, settings, args.case_id)
    except CaseNotFound as exc:
        print(f"harmwatch: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(case, indent=2, ensure_ascii=False))
    return 0


def _run_case_action(func, *params) -> int:  # type: ignore[no-untyped-def]
    from review_ui.evidence.cases import CaseError

    try:
        case = func(*params)
    except CaseError as exc:
        print(f"harmwatch: {exc}", file=sys.stderr)
        return 1
    print(f"{case['case_id']}  {case['status']}  {len(case.get('item_ids', []))} items  "
          f"{case['title']}")
    return 0


def cmd_cases_create(args: argparse.Namespace) -> int:
    from review_ui.evidence.cases import CaseFields, create_case

    client, settings, actor = _context(args)
    fields = CaseFields(args.title, args.reference, args.agency, args.officer, args.notes)
    return _run_case_action(create_case, client, settings, actor, fields)


def cmd_cases_items(args: argparse.Namespace) -> int:
    from review_ui.evidence.cases import add_items, remove_items

    client, settings, actor = _context(args)
    func = add_items if args.action == "add" else remove_items
    return _run_case_action(func, client, settings, actor, args.case_id, args.item_ids)


def cmd_cases_close(args: argparse.Namespace) -> int:
    from review_ui.evidence.cases import set_status

    client, settings, actor = _context(args)
    return _run_case_action(set_status, client, settings, actor, args.case_id, "closed")
