"""The real services answer, and the shared clients set them up idempotently."""

from __future__ import annotations

import json
import os

import pytest
from elasticsearch import BadRequestError

from harmwatch.contract import CATEGORIES
from harmwatch.documents import (
    MappingConflict,
    ensure_indices,
    get_thresholds,
    items_alias,
    put_thresholds,
)
from harmwatch.kafka import admin_client, ensure_topics
from harmwatch.search import es_client, server_version
from services.manager import pinned_versions


def test_elasticsearch_is_the_pinned_version(services):
    assert server_version(es_client(services)) == pinned_versions()["elasticsearch.version"]


def test_topics_are_created_with_explicit_partitions(services):
    first = ensure_topics(services)
    second = ensure_topics(services)
    assert [(n, p) for n, p, _ in first] == [
        (services.topic_raw, 3), (services.topic_flagged, 3), (services.topic_dead, 1)]
    assert not any(created for _, _, created in second)
    admin = admin_client(services)
    try:
        described = {t["name"]: len(t["partitions"]) for t in admin.describe_topics(
            [services.topic_raw, services.topic_dead])}
    finally:
        admin.close()
    assert described == {services.topic_raw: 3, services.topic_dead: 1}


def test_indices_live_behind_versioned_aliases(services):
    client = es_client(services)
    ensure_indices(client, services)
    ensure_indices(client, services)
    aliases = client.indices.get_alias(name=items_alias(services))
    assert list(aliases) == [f"{items_alias(services)}-v1"]


def test_thresholds_round_trip_and_validate(services):
    client = es_client(services)
    ensure_indices(client, services)
    saved = put_thresholds(client, services, {"grooming": 0.42}, user="test")
    assert get_thresholds(client, services) == saved
    assert saved["grooming"] == 0.42
    try:
        put_thresholds(client, services, {"grooming": 1.5}, user="test")
    except ValueError as exc:
        assert "grooming" in str(exc)
    else:
        raise AssertionError("a threshold above 1 was accepted")


def _scoped(services, name: str, **update):
    """The session's settings with indices of this test's own (the session drops them)."""
    return services.model_copy(update={"es_index_prefix": f"{services.es_index_prefix}-{name}",
                                       **update})


def test_an_items_index_created_before_urgent_gains_it_without_a_reindex(services):
    """An upgrade: the v1 index of an older release (no ``urgent``) is extended in place,
    its old documents sort as not urgent, and urgent ones are queued first."""
    import copy

    from harmwatch.documents import (
        ITEMS_MAPPING,
        QUEUE_SORT,
        ensure_versioned_index,
        item_document,
        queue_filter,
    )
    from review_ui import samples

    settings = _scoped(services, "upgrade")
    client = es_client(settings)
    alias = items_alias(settings)
    old_mapping = copy.deepcopy(ITEMS_MAPPING)
    del old_mapping["properties"]["urgent"]
    client.indices.create(index=f"{alias}-v1", mappings=old_mapping,
                          aliases={alias: {"is_write_index": True}})
    scores = {"grooming": 0.05}
    old = samples._jsonable(item_document(samples.analysed_post(
        9001, source="upgrade", scores=scores, match=True, media=[b"x"])))
    del old["urgent"]
    client.index(index=alias, id=old["item_id"], document=old)
    refused = samples._jsonable(item_document(samples.analysed_post(
        9002, source="upgrade", scores=scores, urgent=True)))
    with pytest.raises(BadRequestError, match="strict"):
        client.index(index=alias, id=refused["item_id"], document=refused)

    ensure_indices(client, settings)
    ensure_indices(client, settings)  # idempotent
    mapping = client.indices.get_mapping(index=alias)[f"{alias}-v1"]["mappings"]
    assert mapping["properties"]["urgent"] == {"type": "boolean"}
    assert list(client.indices.get_alias(name=alias)) == [f"{alias}-v1"], "no reindex"
    docs = [samples._jsonable(item_document(samples.analysed_post(
        n, source="upgrade", scores=scores, urgent=urgent)))
        for n, urgent in ((9002, True), (9003, False))]
    for doc in docs:
        client.index(index=alias, id=doc["item_id"], document=doc)
    client.indices.refresh(index=alias)
    hits = client.search(index=alias, sort=QUEUE_SORT, query=queue_filter(
        {c: 0.9 for c in scores}))["hits"]["hits"]
    # urgent first; then the old (unmarked) bank match by severity; the plain one is out.
    assert [h["_id"] for h in hits] == [docs[0]["item_id"], old["item_id"]]
    assert [h["sort"][0] for h in hits] == [1, 0]

    changed = copy.deepcopy(ITEMS_MAPPING)
    changed["properties"]["urgent"] = {"type": "keyword"}
    with pytest.raises(MappingConflict, match="urgent"):
        ensure_versioned_index(client, alias, 1, changed, shards=3)


def _manifest(directory, **fields) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "model.json").write_text(json.dumps({"version": "hw-text-test", **fields}))


def test_default_thresholds_come_from_the_model_manifest(services, tmp_path):
    from harmwatch.documents import FALLBACK_THRESHOLD, default_thresholds, model_defaults

    model_dir = tmp_path / "text"
    settings = _scoped(services, "defaults", text_model_dir=model_dir)
    assert default_thresholds(settings) == dict.fromkeys(CATEGORIES, FALLBACK_THRESHOLD), \
        "no model.json: 0.5 everywhere"
    _manifest(model_dir)
    assert default_thresholds(settings) == dict.fromkeys(CATEGORIES, 0.5), "no thresholds"
    _manifest(model_dir, thresholds={
        "grooming": {"threshold": 0.31, "precision": 0.82, "recall": 0.93, "target": 0.9},
        "self_harm": {"threshold": 0.22, "precision": 0.6, "recall": 0.96, "target": 0.95}},
        urgent_threshold=0.22)
    defaults = model_defaults(settings)
    assert defaults["grooming"].threshold == 0.31 and defaults["grooming"].precision == 0.82
    assert defaults["self_harm"].recall == 0.96 and defaults["self_harm"].from_model
    assert defaults["violence"].threshold == 0.5 and not defaults["violence"].from_model
    # Admin-set thresholds override the model's; the others keep following the model.
    client = es_client(settings)
    ensure_indices(client, settings)
    assert get_thresholds(client, settings)["grooming"] == 0.31
    saved = put_thresholds(client, settings, {"violence": 0.7}, user="test")
    assert saved == get_thresholds(client, settings)
    assert (saved["violence"], saved["grooming"], saved["self_harm"]) == (0.7, 0.31, 0.22)
    # A retrained model's new default reaches the categories no admin set, at once.
    _manifest(model_dir, thresholds={"grooming": {"threshold": 0.44}})
    os.utime(model_dir / "model.json", ns=(1, 1))  # a different stamp even on coarse clocks
    current = get_thresholds(client, settings)
    assert (current["grooming"], current["violence"], current["self_harm"]) == (0.44, 0.7, 0.5)


@pytest.mark.parametrize("content, problem", [
    ("{not json", "not valid JSON"),
    ('{"thresholds": {"grooming": {"threshold": 7}}}', "thresholds.grooming.threshold"),
    ('{"thresholds": [0.5]}', "thresholds"),
])
def test_a_broken_model_manifest_is_an_error_naming_the_file(tmp_path, content, problem):
    from harmwatch.documents import default_thresholds
    from harmwatch.settings import ConfigError, load_settings

    (tmp_path / "model.json").write_text(content)
    settings = load_settings(var_dir=tmp_path, text_model_dir=tmp_path)
    with pytest.raises(ConfigError) as caught:
        default_thresholds(settings)
    assert str(tmp_path / "model.json") in str(caught.value)
    assert problem in str(caught.value)
