"""Pure parts of the consumers: risk and reasons, poison detection, logs, error classes."""

from __future__ import annotations

import json
import logging

import pytest
from elasticsearch import ApiError
from kafka.errors import KafkaTimeoutError

from classifiers.text.rules_only import RulesOnlyClassifier
from consumers.analyzer import parse_post, risk_and_reasons
from consumers.logs import JsonFormatter
from consumers.stage import Retryable, is_transient
from harmwatch.contract import HashMatch, MediaHashes, RuleHit, TextAnalysis


def _analysis(**scores: float) -> TextAnalysis:
    return TextAnalysis(language="vi", scores=scores, model_version="m",
                        rule_hits=[RuleHit(rule_id="gr.secrecy.vi", category="grooming", start=0,
                                           end=5, matched="đừng nói")])


def test_risk_is_the_best_score_with_reasons_in_words():
    risk, reasons = risk_and_reasons(_analysis(grooming=0.8, bullying=0.2, violence=0.01), [],
                                     [], floor=0.15)
    assert risk == 0.8
    assert reasons[:2] == ["grooming score 0.80", "bullying score 0.20"]
    assert "rule gr.secrecy.vi (grooming) matched \u201cđừng nói\u201d" in reasons
    assert not any("violence" in r for r in reasons)


def test_a_bank_match_outranks_text_and_an_exact_file_tops_it():
    pdq = HashMatch(bank="ncmec", algorithm="pdq", distance=12, category="A1")
    risk, reasons = risk_and_reasons(_analysis(grooming=0.3), [], [pdq], floor=0.15)
    assert risk == 0.95
    assert reasons[0] == "image matches hash bank ncmec (pdq distance 12, category A1)"
    exact = HashMatch(bank="vic", algorithm="md5", distance=0)
    assert risk_and_reasons(_analysis(), [], [exact], floor=0.15)[0] == 1.0


def test_media_errors_are_reasons_not_failures():
    media = [MediaHashes(error="not_an_image: nope")]
    _, reasons = risk_and_reasons(_analysis(grooming=0.5), media, [], floor=0.15)
    assert "image 1 not hashed: not_an_image: nope" in reasons


@pytest.mark.parametrize("value", [b"", b"{not json", b"[1, 2]", b'{"source": "x"}',
                                   "\u00ff".encode("latin-1")])
def test_unreadable_posts_are_poison(value):
    with pytest.raises(ValueError):
        parse_post(value)


def test_rules_only_mode_scores_by_rule_evidence():
    [analysis] = RulesOnlyClassifier().classify(["Em bao nhiêu tuổi rồi? Đừng nói với bố mẹ nhé"])
    assert analysis.model_version == "rules-only"
    assert analysis.scores["grooming"] > 0.5
    assert {h.rule_id for h in analysis.rule_hits} >= {"gr.secrecy.vi"}


def test_transient_failures_are_told_apart_from_refusals():
    assert is_transient(KafkaTimeoutError())
    assert is_transient(Retryable("2 documents left"))
    assert is_transient(ApiError("busy", meta=type("M", (), {"status": 429})(), body={}))
    assert not is_transient(ApiError("bad", meta=type("M", (), {"status": 400})(), body={}))
    assert not is_transient(ValueError("bug"))


def test_logs_are_one_json_object_per_line_with_the_post_key():
    record = logging.LogRecord("consumers.analyzer", logging.WARNING, __file__, 1,
                               "dead-lettered", None, None)
    record.key = "forum:42"
    entry = json.loads(JsonFormatter({"stage": "analyzer", "worker": 0}).format(record))
    assert entry["key"] == "forum:42"
    assert entry["stage"] == "analyzer"
    assert entry["level"] == "warning"
    assert entry["msg"] == "dead-lettered"


def test_a_dead_letter_too_large_for_kafka_keeps_its_original_in_the_blob_store(tmp_path):
    import base64
    from types import SimpleNamespace

    from consumers.stage import DeadLetterSink
    from harmwatch.blobstore import get_blob_store
    from harmwatch.contract import DeadLetter
    from harmwatch.kafka import fits
    from harmwatch.settings import load_settings

    settings = load_settings(var_dir=tmp_path, kafka_max_message_bytes=64 * 1024)
    sink = DeadLetterSink("analyzer", settings, get_blob_store(settings))

    def record(value: bytes, offset: int) -> SimpleNamespace:
        return SimpleNamespace(key=b"forum:1", value=value, topic="posts.raw", partition=2,
                               offset=offset, timestamp=0)

    small, large = b'{"not": "a post"}', b"x" * (60 * 1024)
    sink.add(record(small, 7), "invalid post")
    sink.add(record(large, 8), "invalid post")
    inline, stored = (DeadLetter.model_validate_json(v) for _, v in sink.letters)
    assert base64.b64decode(inline.original_base64) == small and inline.original_blob_ref is None
    assert stored.original_base64 == "" and stored.original_size == len(large)
    assert get_blob_store(settings).get(stored.original_blob_ref) == large
    assert all(fits(settings, key.encode(), value) for key, value in sink.letters)


def test_an_urgent_post_leads_its_reasons_and_keeps_its_best_score():
    from consumers.analyzer import MAX_REASONS, URGENT_REASON

    urgent = _analysis(self_harm=0.1, grooming=0.05).model_copy(update={"urgent": True})
    many = [HashMatch(bank=f"b{i}", algorithm="pdq", distance=i) for i in range(MAX_REASONS + 3)]
    risk, reasons = risk_and_reasons(urgent, [], [], floor=0.15)
    assert reasons[0] == URGENT_REASON and risk == 0.1
    _, capped = risk_and_reasons(urgent, [], many, floor=0.15)
    assert capped[0] == URGENT_REASON and len(capped) == MAX_REASONS
    assert URGENT_REASON not in risk_and_reasons(_analysis(self_harm=0.9), [], [], 0.15)[1]


class _FixedText:
    """A text engine that answers what the test says, to put scores below any floor."""

    model_version = "fixed"

    def __init__(self, analyses: dict[str, TextAnalysis]) -> None:
        self.analyses = analyses

    def classify(self, texts: list[str]) -> list[TextAnalysis]:
        return [self.analyses[t] for t in texts]


def _run_analyzer(settings, engine, source: str):
    """One analyzer batch over a post per text the engine knows; what it produced and refused."""
    from types import SimpleNamespace

    from consumers.analyzer import Analyzer
    from consumers.engines import Engines
    from consumers.stage import DeadLetterSink
    from harmwatch.blobstore import get_blob_store
    from tests.consumers_support import make_post

    analyzer = Analyzer(settings)
    analyzer.engines = Engines(engine, matcher=None)
    posts = [make_post(source, i, text=t) for i, t in enumerate(engine.analyses)]
    records = [SimpleNamespace(key=p.key.encode(), value=p.model_dump_json().encode(),
                               topic=settings.topic_raw, partition=0, offset=i, timestamp=0)
               for i, p in enumerate(posts)]
    produced: list[tuple[str, list[tuple[str | None, bytes]]]] = []
    runner = SimpleNamespace(produce=lambda topic, out, what: produced.append((topic, out)))
    dead = DeadLetterSink("analyzer", settings, get_blob_store(settings))
    analyzer.handle(records, dead, runner)
    return posts, produced, dead


def test_the_analyzer_forwards_an_urgent_post_below_the_recall_floor(tmp_path):
    """Below the floor, only the urgent post goes on to posts.flagged, with its marker."""

    from consumers.analyzer import URGENT_REASON
    from harmwatch.contract import AnalysedPost
    from harmwatch.settings import load_settings

    settings = load_settings(var_dir=tmp_path, recall_floor=0.5)
    low = {"self_harm": 0.2, "grooming": 0.1}
    texts = {"goodbye": TextAnalysis(language="vi", scores=low, model_version="fixed",
                                     urgent=True),
             "ordinary": TextAnalysis(language="vi", scores=low, model_version="fixed")}
    posts, produced, dead = _run_analyzer(settings, _FixedText(texts), "urgent")
    assert not dead.letters
    [(topic, out)] = produced
    assert topic == settings.topic_flagged
    assert [key for key, _ in out] == [posts[0].key], "the ordinary post stays below the floor"
    analysed = AnalysedPost.model_validate_json(out[0][1])
    assert analysed.text.urgent is True
    assert analysed.risk == 0.2  # at least its best category score
    assert analysed.reasons[0] == URGENT_REASON


def test_the_analyzer_forwards_a_post_at_the_models_default_below_the_recall_floor(tmp_path):
    """Defaults chosen for 90 % recall can sit under the floor: such posts must be indexed."""

    from harmwatch.contract import AnalysedPost
    from harmwatch.settings import load_settings

    class WithDefaults(_FixedText):
        default_thresholds = {"grooming": 0.08, "self_harm": 0.3}

    settings = load_settings(var_dir=tmp_path, recall_floor=0.15)
    texts = {"over its default": TextAnalysis(language="vi", scores={"grooming": 0.09},
                                              model_version="fixed"),
             "under every default": TextAnalysis(language="vi", scores={"grooming": 0.07,
                                                                        "self_harm": 0.1},
                                                 model_version="fixed")}
    posts, produced, _ = _run_analyzer(settings, WithDefaults(texts), "defaults")
    [(_, out)] = produced
    assert [key for key, _ in out] == [posts[0].key]
    assert "grooming score 0.09" in AnalysedPost.model_validate_json(out[0][1]).reasons


def test_a_dead_letter_for_an_oversized_post_id_names_the_field(tmp_path):
    """A 600,000-character post_id used to be reported as the analysed post being too large."""
    import json
    from types import SimpleNamespace

    from consumers.analyzer import Analyzer
    from consumers.engines import Engines
    from consumers.stage import DeadLetterSink
    from harmwatch.blobstore import get_blob_store
    from harmwatch.settings import load_settings
    from tests.consumers_support import make_post

    settings = load_settings(var_dir=tmp_path)
    post = make_post("oversized", 1, text="xin chào").model_copy(update={"post_id": "9" * 600_000})
    analyzer = Analyzer(settings)
    analyzer.engines = Engines(_FixedText({post.text: _analysis(grooming=0.9)}), matcher=None)
    record = SimpleNamespace(key=b"oversized:9", value=post.model_dump_json().encode(),
                             topic=settings.topic_raw, partition=0, offset=0, timestamp=0)
    dead = DeadLetterSink("analyzer", settings, get_blob_store(settings))
    analyzer.handle([record], dead, SimpleNamespace(produce=lambda *args: None))
    ((_, letter),) = dead.letters
    error = json.loads(letter)["error"]
    assert "post_id" in error and "at most 512 characters" in error
    assert "message limit" not in error and len(error) < 1000
