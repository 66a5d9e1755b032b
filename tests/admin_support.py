"""Support for the admin tests: an app on its own index prefix and var dir, seeded items.

The admin figures are counts over the whole items index, so these tests use their own
index prefix (under the session's, so the session clean-up drops it) rather than sharing
the review UI tests' items. Items are built by ``review_ui.samples`` — the indexer's own
``item_document`` — and decisions are written in the shape ``review.decide`` stores.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from harmwatch.contract import CATEGORIES, utcnow
from harmwatch.search import es_client
from harmwatch.settings import Settings
from review_ui import samples
from review_ui.indices import ensure_ui_indices
from tests.ui_support import login, new_user, ui_client

ROLES = ("analyst", "liaison", "admin")


def admin_settings(services: Settings, var_dir: Path, name: str) -> Settings:
    return services.model_copy(update={
        "es_index_prefix": f"{services.es_index_prefix}-{name}", "var_dir": var_dir,
        "banks_dir": var_dir / "banks", "blob_dir": var_dir / "blobs"})


def item(n: int, *, scores: dict[str, float], source: str = "forum-a", age_days: float = 0,
         decision: str | None = None, category: str | None = None,
         decided_after_hours: float = 2.0) -> dict[str, Any]:
    """One items document; ``decision`` confirmed/dismissed/escalated sets status and decision."""
    full = {c: 0.0 for c in CATEGORIES} | scores
    doc = samples.sample_document(n, scores=full, source=source,
                                  age_minutes=int(age_days * 24 * 60))
    if decision:
        crawled = utcnow() - timedelta(days=age_days)
        doc["status"] = decision
        doc["decision"] = {"status": decision, "category": category, "severity": "high",
                           "user": "analyst-x",
                           "at": (crawled + timedelta(hours=decided_after_hours)).isoformat()}
    return doc


def index(settings: Settings, docs: list[dict[str, Any]]) -> None:
    samples.index_documents(es_client(settings), settings, docs)


@pytest.fixture(scope="module")
def admin_env(services: Settings, tmp_path_factory: pytest.TempPathFactory,
              request: pytest.FixtureRequest) -> Settings:
    """Settings of one test module: own var dir; own indices if it sets ``OWN_INDICES``.

    Modules that count items (thresholds, reports) need indices no other module writes
    to; the others share one set, which saves creating indices on a busy test host.
    """
    module = request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_admin_")
    name = module.replace("_", "")[:10] if getattr(request.module, "OWN_INDICES", False) else "shared"
    settings = admin_settings(services, tmp_path_factory.mktemp(f"admin-{module}"), f"adm{name}")
    ensure_ui_indices(es_client(settings), settings)
    return settings


@pytest.fixture(scope="module")
def app(admin_env: Settings) -> Iterator[TestClient]:
    with ui_client(admin_env) as client:
        yield client


_USERS: dict[str, dict[str, str]] = {}


@pytest.fixture(scope="module")
def logins(admin_env: Settings) -> dict[str, str]:
    """One username per role, created once per set of indices (password hashing is slow)."""
    prefix = admin_env.es_index_prefix
    if prefix not in _USERS:
        _USERS[prefix] = {role: new_user(admin_env, role) for role in ROLES}
    return _USERS[prefix]


def as_role(client: TestClient, username: str) -> str:
    """Sign ``client`` in as ``username``; returns the CSRF token."""
    client.cookies.clear()
    return login(client, username)
