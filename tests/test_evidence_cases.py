"""Cases: storage, status moves, which items may join, and the `harmwatch cases` CLI."""

from __future__ import annotations

import json
import zipfile

import pytest

from harmwatch.blobstore import get_blob_store
from harmwatch.cli import main
from harmwatch.search import es_client
from harmwatch.settings import get_settings
from review_ui import audit
from review_ui.evidence import cases
from tests.evidence_support import account, make_item

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def env(services, tmp_path_factory):
    settings = services.model_copy(update={"var_dir": tmp_path_factory.mktemp("cases-var")})
    client = es_client(settings)
    cases.ensure_case_indices(client, settings)
    return client, settings, get_blob_store(settings)


@pytest.fixture()
def cli_env(env, monkeypatch):
    """Point the CLI's process-wide settings at this test session's index prefix and dirs."""
    _, settings, _ = env
    for name in ("es_index_prefix", "var_dir", "blob_dir", "banks_dir"):
        monkeypatch.setenv(f"HARMWATCH_{name.upper()}", str(getattr(settings, name)))
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_case_lifecycle_with_audit(env):
    client, settings, store = env
    officer = account(client, settings, "liaison2", "liaison")
    one, two = (make_item(client, settings, store) for _ in range(2))
    case = cases.create_case(client, settings, officer, cases.CaseFields(
        "Case title", "REF-1", "Agency", "Officer", "notes"))
    assert case["status"] == "open" and case["item_ids"] == []
    case = cases.add_items(client, settings, officer, case["case_id"],
                           [one["item_id"], two["item_id"], one["item_id"]])
    assert case["item_ids"] == [one["item_id"], two["item_id"]]
    case = cases.remove_items(client, settings, officer, case["case_id"], [one["item_id"]])
    assert case["item_ids"] == [two["item_id"]]
    case = cases.set_status(client, settings, officer, case["case_id"], "exported")
    # Changing an exported case reopens it: the pack handed over no longer describes it.
    case = cases.add_items(client, settings, officer, case["case_id"], [one["item_id"]])
    assert case["status"] == "open"
    case = cases.set_status(client, settings, officer, case["case_id"], "closed")
    assert case["closed_at"]
    with pytest.raises(cases.CaseError, match="closed"):
        cases.add_items(client, settings, officer, case["case_id"], [two["item_id"]])
    with pytest.raises(cases.CaseError, match="cannot become"):
        cases.set_status(client, settings, officer, case["case_id"], "open")
    client.indices.refresh(index=settings.index_name("audit"))
    actions = [r["action"] for r in audit.search_records(client, settings,
                                                         target=case["case_id"])]
    assert {"case_create", "case_add_items", "case_remove_items", "case_status"} <= set(actions)


def test_only_confirmed_or_escalated_items_join_a_case(env):
    client, settings, store = env
    officer = account(client, settings, "liaison2", "liaison")
    new = make_item(client, settings, store, status="new")
    dismissed = make_item(client, settings, store, status="dismissed")
    case = cases.create_case(client, settings, officer, cases.CaseFields("t"))
    with pytest.raises(cases.CaseError) as refused:
        cases.add_items(client, settings, officer, case["case_id"],
                        [new["item_id"], dismissed["item_id"], "no-such-item"])
    message = str(refused.value)
    assert "is new" in message and "is dismissed" in message and "no such item" in message
    assert cases.get_case(client, settings, case["case_id"])["item_ids"] == []


def test_a_case_needs_a_title(env):
    client, settings, _ = env
    officer = account(client, settings, "liaison2", "liaison")
    with pytest.raises(cases.CaseError, match="title"):
        cases.create_case(client, settings, officer, cases.CaseFields("  "))


def test_cases_cli_builds_and_exports_a_case(env, cli_env, tmp_path, capsys):
    client, settings, store = env
    account(client, settings, "liaison3", "liaison")
    item = make_item(client, settings, store)
    assert main(["cases", "create", "--title", "CLI case", "--reference", "R-9",
                 "--as", "liaison3"]) == 0
    case_id = capsys.readouterr().out.split()[0]
    assert main(["cases", "add", case_id, item["item_id"], "--as", "liaison3"]) == 0
    assert main(["cases", "list"]) == 0
    assert case_id in capsys.readouterr().out
    pack = tmp_path / "p.zip"
    assert main(["evidence", "export", case_id, "--out", str(pack), "--lang", "en",
                 "--as", "liaison3"]) == 0
    with zipfile.ZipFile(pack) as archive:
        assert json.loads(archive.read("manifest.json"))["case"]["case_id"] == case_id
    key = tmp_path / "k.pem"
    assert main(["evidence", "public-key", "--out", str(key)]) == 0
    assert main(["evidence", "verify", str(pack), "--public-key", str(key)]) == 0
    assert main(["cases", "close", case_id, "--as", "liaison3"]) == 0
    assert "closed" in capsys.readouterr().out


def test_analysts_cannot_use_case_or_export_commands(env, cli_env):
    client, settings, _ = env
    account(client, settings, "analyst3", "analyst")
    with pytest.raises(SystemExit, match="not an enabled liaison or admin"):
        main(["cases", "create", "--title", "x", "--as", "analyst3"])
    with pytest.raises(SystemExit, match="not an enabled liaison or admin"):
        main(["evidence", "export", "whatever", "--out", "/dev/null", "--as", "analyst3"])
