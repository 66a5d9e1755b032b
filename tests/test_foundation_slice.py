"""The thin real slice, end to end, through each stage's own command.

demo site on 127.0.0.1 → `harmwatch crawl` → posts.raw (real Kafka) → `harmwatch consume
analyzer` → posts.flagged → `harmwatch consume indexer` → Elasticsearch (real) → the review
UI's queue page. Each stage runs as its own process, configured only through the
environment, exactly as in production.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from harmwatch.documents import items_alias
from harmwatch.kafka import ensure_topics
from harmwatch.search import es_client
from harmwatch.settings import REPO_ROOT, Settings, settings_environment
from services.demo_site import start_demo_site
from tests.ui_support import login, new_user, ui_client


def _env(settings: Settings) -> dict[str, str]:
    """The isolated test settings, passed to child processes the production way."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HARMWATCH_")}
    env.update(settings_environment(settings))
    return env


def _harmwatch(settings: Settings, *args: str, timeout: float = 240) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "harmwatch.cli", *args], env=_env(settings), cwd=REPO_ROOT,
        capture_output=True, text=True, timeout=timeout,
    )
    assert result.returncode == 0, f"harmwatch {' '.join(args)} failed:\n{result.stderr[-3000:]}"
    return result.stdout + result.stderr


@pytest.fixture()
def demo_sources(tmp_path: Path) -> Path:
    """The demo source, pointed at a demo site on a free port."""
    site = start_demo_site(port=0)
    demo = yaml.safe_load((REPO_ROOT / "crawlers" / "sources.demo.yaml").read_text())
    source = demo["sources"][0]
    source["id"] = "slice-forum"
    source["start_urls"] = [f"http://127.0.0.1:{site.server_address[1]}/"]
    path = tmp_path / "sources.yaml"
    path.write_text(yaml.safe_dump(demo, allow_unicode=True))
    yield path
    site.shutdown()


def test_a_post_flows_from_the_demo_site_to_the_review_queue(services, demo_sources):
    ensure_topics(services)
    _harmwatch(services, "crawl", "slice-forum", "--sources-file", str(demo_sources))
    _harmwatch(services, "consume", "analyzer", "--until-idle", "8")
    _harmwatch(services, "consume", "indexer", "--until-idle", "6")

    client = es_client(services)
    client.indices.refresh(index=items_alias(services))
    hits = client.search(index=items_alias(services), size=100,
                         query={"term": {"source": "slice-forum"}})["hits"]["hits"]
    assert hits, "nothing from the demo site reached Elasticsearch"
    keys = [hit["_source"]["post_key"] for hit in hits]
    assert len(keys) == len(set(keys)), "a post was indexed twice"
    assert all(0.0 <= hit["_source"]["max_score"] <= 1.0 for hit in hits)
    risky = max(hits, key=lambda hit: hit["_source"]["max_score"])["_source"]

    with ui_client(services) as ui:
        login(ui, new_user(services, "admin"))
        queue = ui.get("/", follow_redirects=True)
        assert queue.status_code == 200
        assert risky["text"][:20].replace("&", "&amp;") in queue.text
