"""Rules: versioned data, explainable hits, spans on the ORIGINAL text."""

from __future__ import annotations

import pytest

from classifiers.text.language import normalize_and_detect
from classifiers.text.rules import DEFAULT_RULES, evidence, load_rules
from harmwatch.contract import CATEGORIES, RuleHit


@pytest.fixture(scope="module")
def rules():
    return load_rules()


def hits_for(rules, text: str) -> list[RuleHit]:
    normalized, _ = normalize_and_detect(text)
    return rules.match(text, normalized)


def test_rules_file_is_versioned_and_covers_every_category(rules):
    assert rules.version
    assert {rule.category for rule in rules.rules} == set(CATEGORIES)


@pytest.mark.parametrize(("text", "rule_id", "highlighted"), [
    ("Em bn tuổi r? Đừng nói vs bme nhé", "gr.age_question.vi", "Em bn tuổi r"),
    ("Em bn tuổi r? Đừng nói vs bme nhé", "gr.secrecy.vi", "Đừng nói vs bme"),
    ("em bao nhieu tuoi roi, dung noi voi bo me", "gr.secrecy.vi", "dung noi voi bo me"),
    ("ok so S.E.N.D n00dz or I'll leak your pics", "se.image_request.en", "n00dz"),
    ("ok so S.E.N.D n00dz or I'll leak your pics", "se.sextortion.en", "leak your pics"),
    ("Ѕеnd рics of you", "se.image_request.en", "Ѕеnd рics of you"),
    ("keep it a secret 🤫", "gr.secrecy.en", "keep it a secret"),
    ("Cần bán bé trai sơ sinh giá 50 triệu", "tr.sale.vi", "Cần bán bé trai sơ sinh giá"),
    ("e chan song lam r", "sh.ideation.vi", "chan song"),
])
def test_hit_spans_highlight_the_original_words(rules, text, rule_id, highlighted):
    hits = [h for h in hits_for(rules, text) if h.rule_id == rule_id]
    assert hits, f"{rule_id} did not fire on {text!r}"
    assert {text[h.start:h.end] for h in hits} == {h.matched for h in hits}
    assert highlighted in {h.matched for h in hits}


@pytest.mark.parametrize("text", [
    "Tổng đài 111 miễn phí 24/7, hãy gọi khi cần giúp đỡ.",
    "Thông báo: học sinh lớp 7 nộp ảnh thẻ 3x4 trước thứ Sáu.",
    "We beat them 3-0 in yesterday's match, the kids played great.",
])
def test_benign_notices_fire_nothing(rules, text):
    assert hits_for(rules, text) == []


def test_evidence_is_a_noisy_or_of_distinct_rules(rules):
    hits = hits_for(rules, "how old are u? keep it a secret, our little secret")
    ev = evidence(hits)
    weights = {h.rule_id: h.weight for h in hits}
    expected = 1.0
    for w in weights.values():
        expected *= 1 - w
    assert ev["grooming"] == pytest.approx(1 - expected)
    assert ev["violence"] == 0.0


def test_a_bad_rule_is_refused_with_its_id(tmp_path):
    bad = tmp_path / "rules.yaml"
    bad.write_text('version: "x"\nrules:\n  - id: broken.one\n    category: grooming\n'
                   '    weight: 0.5\n    patterns: ["(unclosed"]\n')
    with pytest.raises(ValueError, match="broken.one"):
        load_rules(bad)
    assert DEFAULT_RULES.exists()
