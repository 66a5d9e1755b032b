"""Support for the review UI tests: an app on the session's isolated indices, users, logins.

Everything runs against the real Elasticsearch through the ``services`` settings (own
index prefix per test session); nothing is mocked.
"""

from __future__ import annotations

import itertools
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fastapi.testclient import TestClient

from harmwatch.blobstore import get_blob_store
from harmwatch.search import es_client
from harmwatch.settings import Settings
from review_ui import samples
from review_ui.accounts import ensure_user
from review_ui.app import create_app

PASSWORD = "correct-horse-battery"
_numbers = itertools.count(1)


@contextmanager
def ui_client(settings: Settings) -> Iterator[TestClient]:
    """A TestClient on a fresh app, lifespan run."""
    with TestClient(create_app(settings), follow_redirects=False) as client:
        yield client


def new_user(settings: Settings, role: str, locale: str = "en") -> str:
    """A fresh account of ``role`` with :data:`PASSWORD`; returns its username."""
    username = f"{role}{next(_numbers)}-{uuid.uuid4().hex[:6]}"
    ensure_user(settings, username, PASSWORD, role, locale=locale)
    return username


def login_token(client: TestClient) -> str:
    page = client.get("/login")
    return re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)


def login(client: TestClient, username: str, password: str = PASSWORD) -> str:
    """Sign in through the form; returns the session's CSRF token."""
    response = client.post("/login", data={"username": username, "password": password,
                                           "csrf_token": login_token(client)})
    assert response.status_code == 303, response.text
    return client.get("/api/me").json()["csrf_token"]


def unique_source() -> str:
    return f"src-{uuid.uuid4().hex[:8]}"


def seed(settings: Settings, count: int, **options: Any) -> list[dict[str, Any]]:
    """Index ``count`` sample items (numbered from a global counter) and return them."""
    blobs = get_blob_store(settings)
    docs = [samples.sample_document(next(_numbers) * 1000 + i, blobs=blobs, **options)
            for i in range(count)]
    samples.index_documents(es_client(settings), settings, docs)
    return docs


def seed_one(settings: Settings, **options: Any) -> dict[str, Any]:
    return seed(settings, 1, **options)[0]
