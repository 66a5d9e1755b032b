"""``harmwatch eval-text``: its arithmetic on a small hand-checked file, and the command itself.

The eight posts below were scored by hand against fixed thresholds; every figure asserted
here was worked out on paper first (see the comments), so a change in how a figure is
counted fails this test rather than silently moving the model card's numbers.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from classifiers.text.evaluation import EvalSetError, evaluate, read_labelled, render_report
from harmwatch.cli import main
from harmwatch.contract import CATEGORIES

ROWS = [
    # id, text, labels, lang, kind
    ("v1", "e muốn chết", ["self_harm"], "vi", "harmful"),
    ("v2", "anh gửi card, đừng nói mẹ", ["grooming"], "vi", "harmful"),
    ("v3", "tòa xử vụ mua bán trẻ em", [], "vi", "hard_negative"),
    ("v4", "thi xong chắc chết mất", [], "vi", "hard_negative"),
    ("e1", "goodbye forever", ["self_harm"], "en", "harmful"),
    ("e2", "send pics or i post the old ones", ["sexual_exploitation", "bullying"], "en", "harmful"),
    ("e3", "call 111, it's free", [], "en", "hard_negative"),
    ("e4", "nice weather", [], "en", "benign"),
]
T = dict.fromkeys(CATEGORIES, 0.5)


def score_rows() -> np.ndarray:
    """Hand-set scores: only the cells named here are non-zero."""
    s = np.zeros((len(ROWS), len(CATEGORIES)))
    col = CATEGORIES.index
    s[0, col("self_harm")] = 0.9          # v1: hit
    s[1, col("grooming")] = 0.3           # v2: missed (below 0.5)
    s[2, col("trafficking")] = 0.7        # v3: hard negative queued (false trafficking)
    s[3, col("self_harm")] = 0.2          # v4: hard negative, not queued...
    s[4, col("self_harm")] = 0.4          # e1: below threshold, but urgent (see URGENT)
    s[5, col("sexual_exploitation")] = 0.8  # e2: reaches one of its two categories
    s[6, col("self_harm")] = 0.6          # e3: hard negative queued (false self_harm)
    return s


URGENT = [False, False, False, False, True, False, False, False]


@pytest.fixture
def labelled_file(tmp_path):
    path = tmp_path / "set.jsonl"
    path.write_text("".join(json.dumps({"id": i, "text": t, "labels": lab, "lang": lang, "kind": k},
                                       ensure_ascii=False) + "\n" for i, t, lab, lang, k in ROWS) + "\n")
    return path


def test_figures_match_the_hand_computation(labelled_file):
    posts = read_labelled(labelled_file)
    report = evaluate(posts, score_rows(), T, urgent=URGENT)
    # Harmful: v1, v2, e1, e2. Own category reached: v1 (0.9), e2 (sexual_exploitation 0.8).
    # e1 is queued (urgent) but its self_harm score 0.4 is below 0.5: not "its own category".
    assert report["recall"]["own_category_count"] == [2, 4]
    assert report["recall"]["own_category"] == pytest.approx(0.5)
    # Hard negatives v3, v4, e3: v3 (trafficking 0.7) and e3 (self_harm 0.6) are queued.
    assert report["hard_negatives_queued"] == 2
    assert report["hard_negative_rate"] == pytest.approx(2 / 3)
    cats = report["categories"]
    # self_harm over all: TP v1; FP e3; FN e1 → P 1/2, R 1/2, F1 1/2.
    assert (cats["self_harm"]["tp"], cats["self_harm"]["fp"], cats["self_harm"]["fn"]) == (1, 1, 1)
    assert cats["self_harm"]["f1"] == pytest.approx(0.5)
    # trafficking: no support, one FP (v3): excluded from the macro mean, F1 0.
    assert cats["trafficking"]["support"] == 0 and cats["trafficking"]["fp"] == 1
    # grooming: FN v2 → F1 0; bullying: FN e2 → F1 0; sexual_exploitation: TP e2 → F1 1.
    # Macro over the supported four: (0.5 + 0 + 0 + 1) / 4.
    assert report["macro_f1"]["all"] == pytest.approx(0.375)
    # Vietnamese: self_harm TP v1 (F1 1), grooming FN v2 (F1 0) → 0.5.
    assert report["macro_f1"]["vi"] == pytest.approx(0.5)
    # English: self_harm FN e1 + FP e3 (F1 0), sexual_exploitation 1, bullying 0 → 1/3.
    assert report["macro_f1"]["en"] == pytest.approx(1 / 3)
    assert [m["id"] for m in report["misses"]] == ["v2", "e1"]
    assert [m["id"] for m in report["false_alarms"]] == ["v3", "e3"]
    assert report["recall"]["self_harm"] == pytest.approx(0.5)


def test_the_language_of_a_row_without_lang_comes_from_the_classifier(tmp_path):
    path = tmp_path / "nolang.jsonl"
    path.write_text(json.dumps({"text": "x", "labels": ["violence"]}) + "\n")
    scores = np.zeros((1, len(CATEGORIES)))
    report = evaluate(read_labelled(path), scores, T, languages=["vi"])
    assert set(report["per_language"]) == {"vi"}
    assert report["macro_f1"]["en"] is None


def test_the_plain_report_names_the_figures(labelled_file):
    report = evaluate(read_labelled(labelled_file), score_rows(), T, urgent=URGENT)
    text = render_report(report, "hw-text-test", "model defaults")
    assert "harmful posts reaching their own category: 2 of 4 (0.500)" in text
    assert "hard negatives queued: 2 of 3 (0.667)" in text
    assert "macro-F1: en 0.333, vi 0.500, all 0.375" in text
    assert "anh gửi card" in text  # the misses are listed


@pytest.mark.parametrize(("line", "message"), [
    ("not json", ":1: not valid JSON"),
    ('{"text": "x"}', '"labels" must be a list'),
    ('{"text": "x", "labels": ["spam"]}', "unknown categories ['spam']"),
    ('{"text": 3, "labels": []}', '"text" must be a string'),
    ('{"text": "x", "labels": ["violence"], "kind": "hard_negative"}', "a hard_negative has no labels"),
])
def test_a_malformed_file_is_refused_with_the_line(tmp_path, line, message):
    path = tmp_path / "bad.jsonl"
    path.write_text(line + "\n")
    with pytest.raises(EvalSetError, match=message.replace("[", r"\[").replace("]", r"\]")):
        read_labelled(path)


def test_the_command_exits_2_on_a_bad_file(tmp_path, capsys):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"text": "x", "labels": "violence"}\n')
    assert main(["eval-text", str(path), "--rules-only"]) == 2
    assert "bad.jsonl:1" in capsys.readouterr().out


def test_the_command_scores_a_file_with_the_shipped_model(labelled_file, capsys):
    assert main(["eval-text", str(labelled_file), "--thresholds", "model", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report["macro_f1"]) >= {"vi", "en", "all"}
    assert {"own_category", "self_harm"} <= set(report["recall"])
    assert 0.0 <= report["hard_negative_rate"] <= 1.0
    assert report["posts"] == len(ROWS) and report["hard_negatives"] == 3
    assert report["model_version"].startswith("hw-text-")
    assert report["threshold_source"] == "model defaults"
    # The model's goodbye and "how to die" questions are on the self-harm path.
    assert "e1" not in [m["id"] for m in report["misses"]]


def test_the_command_prints_a_readable_report(labelled_file, capsys):
    assert main(["eval-text", str(labelled_file), "--rules-only", "--errors", "0"]) == 0
    out = capsys.readouterr().out
    assert "macro-F1:" in out and "hard negatives queued:" in out and "rules-only" in out
    assert "missed" not in out  # --errors 0 lists none
