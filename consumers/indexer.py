"""The indexer: ``posts.flagged`` → Elasticsearch ``items`` (bulk, create-only).

Document ids come from :func:`harmwatch.contract.item_id` (source, post id, version), and
every write is ``op_type=create``: a replayed message finds its document already there
(409) and leaves it alone, so analysts' claims and decisions are never overwritten and a
post version is stored exactly once however often it is delivered.
"""

from __future__ import annotations

import logging
from typing import Any

from elasticsearch import Elasticsearch
from pydantic import ValidationError

from consumers import metrics
from consumers.stage import DeadLetterSink, Retryable, StageRunner
from harmwatch.contract import AnalysedPost, item_id
from harmwatch.documents import ensure_indices, item_document, items_alias
from harmwatch.search import es_client
from harmwatch.settings import Settings

log = logging.getLogger(__name__)

NAME = "indexer"


def _retryable_status(status: int) -> bool:
    return status in (408, 429) or status >= 500


class Indexer:
    """The indexer stage (consumer group ``indexer`` on ``settings.topic_flagged``)."""

    name = NAME
    # One bulk request per batch; Elasticsearch handles a few hundred documents per bulk well.
    default_batch = 500

    def __init__(self, settings: Settings, group: str = NAME) -> None:
        self.settings = settings
        self.group = group
        self.topic = settings.topic_flagged
        # Retries are ours (with backoff, forever); the client's own would only add delay.
        self.client: Elasticsearch = es_client(settings, max_retries=0, retry_on_timeout=False)
        self.alias = items_alias(settings)

    def start(self, runner: StageRunner) -> None:
        ensure_indices(self.client, self.settings)

    def handle(self, records: list[Any], dead: DeadLetterSink, runner: StageRunner) -> None:
        pending: dict[str, tuple[Any, dict[str, Any]]] = {}
        for record in records:
            try:
                analysed = AnalysedPost.model_validate_json(record.value or b"")
            except (ValueError, ValidationError) as exc:
                dead.add(record, f"invalid analysed post: {exc}")
                continue
            post = analysed.post
            doc_id = item_id(post.source, post.post_id, post.version)
            if doc_id in pending:  # the same version twice in one batch: one write
                metrics.MESSAGES.labels(NAME, "duplicate").inc()
                continue
            try:
                pending[doc_id] = (record, item_document(analysed))
            except (ValueError, TypeError, KeyError) as exc:
                dead.add(record, f"cannot build the document: {exc!r}")
        if pending:
            with metrics.STEP_SECONDS.labels(NAME, "indexing").time():
                runner.retry(lambda: self._bulk(pending, dead), "bulk index")

    def _bulk(self, pending: dict[str, tuple[Any, dict[str, Any]]], dead: DeadLetterSink) -> None:
        """One bulk request for what is still pending; removes each item once settled.

        Raises :class:`Retryable` while items remain that Elasticsearch refused for a
        reason retrying can fix (overload, a shard unavailable).
        """
        operations: list[dict[str, Any]] = []
        for doc_id, (_, document) in pending.items():
            operations += [{"create": {"_index": self.alias, "_id": doc_id}}, document]
        response = self.client.bulk(operations=operations)
        retry_reason = None
        for item in response["items"]:
            result = item["create"]
            doc_id, status = result["_id"], result["status"]
            record = pending[doc_id][0]
            if status in (200, 201):
                metrics.MESSAGES.labels(NAME, "indexed").inc()
            elif status == 409:
                metrics.MESSAGES.labels(NAME, "duplicate").inc()
            elif _retryable_status(status):
                retry_reason = result.get("error")
                continue
            else:
                dead.add(record, f"elasticsearch refused the document: {result.get('error')}")
            key = record.key.decode("utf-8", "replace") if record.key else None
            log.debug("indexed", extra={"key": key, "status": status, "id": doc_id})
            del pending[doc_id]
        if pending:
            raise Retryable(f"{len(pending)} documents not stored yet: {retry_reason}")
