"""Any Hugging Face encoder directory an operator drops in works through the same code path.

A tiny, randomly initialised XLM-R model with its own WordPiece tokenizer is written to a
temporary directory, a head is trained on it, and it is loaded and used exactly like the
shipped model (``local_files_only=True``, no hub). Retraining from analysts' decisions runs
on the same tiny model (reading decisions from the real Elasticsearch is
tests/test_text_decisions_es.py).
"""

from __future__ import annotations

import json

import pytest
import torch

from classifiers.text.classifier import TextClassifier
from harmwatch.contract import CATEGORIES, TextAnalysis
from models.corpus import load_corpus
from models.retrain import retrain_from_decisions
from models.train import train


def make_tiny_encoder(path) -> None:
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast, XLMRobertaConfig, XLMRobertaModel

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    texts = [r["text"] for r in load_corpus()]
    tok.train_from_iterator(texts, trainers.WordPieceTrainer(vocab_size=600,
                                                            special_tokens=specials))
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        special_tokens=[("[CLS]", tok.token_to_id("[CLS]")), ("[SEP]", tok.token_to_id("[SEP]"))])
    PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]",
                            cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]",
                            ).save_pretrained(str(path))
    config = XLMRobertaConfig(vocab_size=tok.get_vocab_size(), hidden_size=32,
                              num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                              max_position_embeddings=130, pad_token_id=0)
    torch.manual_seed(0)
    XLMRobertaModel(config).save_pretrained(str(path))


def small_corpus(path, per_split: int = 300):
    """A slice of the real corpus, both splits, so that training the tiny model is quick."""
    rows = load_corpus()
    picked = [r for r in rows if r["split"] == "train"][::7][:per_split]
    picked += [r for r in rows if r["split"] == "validation"][::5][: per_split // 2]
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in picked))
    return path


@pytest.fixture(scope="module")
def operator_model(tmp_path_factory):
    root = tmp_path_factory.mktemp("operator")
    make_tiny_encoder(root / "encoder")
    artefacts, metrics = train(small_corpus(root / "corpus.jsonl"), encoder_dir=root / "encoder",
                               out_dir=root / "model", threads=1, write_card=False, layers=1, epochs=1)
    return root, artefacts, metrics


def test_the_top_layer_fine_tunes_on_an_operator_encoder(operator_model):
    root, artefacts, metrics = operator_model
    assert artefacts.version.startswith("hw-text-")
    assert artefacts.manifest["embedding_dim"] == 32
    assert (root / "model" / "pr_curves.png").stat().st_size > 0
    assert set(metrics["validation"]) == {"rules_only", "frozen", "finetuned"}
    assert set(metrics["independent"]["scorers"]) == {"rules_only", "frozen", "finetuned"}
    assert set(artefacts.thresholds) == set(CATEGORIES)
    chosen = artefacts.manifest["thresholds"]
    assert all(0 < chosen[c]["threshold"] < 1 and chosen[c]["recall"] >= chosen[c]["target"]
               for c in CATEGORIES)


def test_a_fine_tuned_overlay_changes_the_encoder_and_round_trips(operator_model, tmp_path):
    root, _, _ = operator_model
    artefacts, _ = train(small_corpus(tmp_path / "corpus.jsonl", 200), encoder_dir=root / "encoder",
                         out_dir=tmp_path / "model", threads=1, write_card=False, layers=1, epochs=2,
                         keep="finetuned")
    assert artefacts.manifest["encoder"]["fine_tuned_layers"] == 1
    assert all(k.startswith("encoder.layer.1.") for k in artefacts.overlay)
    loaded = TextClassifier.load(tmp_path / "model", threads=1)
    weights = loaded.encoder.model.state_dict()
    base = TextClassifier.load(root / "model", threads=1).encoder.model.state_dict()
    for key, value in loaded.artefacts.overlay.items():
        assert torch.equal(weights[key], value.float())  # float16 on disk, exact once loaded
    assert any(not torch.equal(weights[k], base[k]) for k in loaded.artefacts.overlay)


def test_the_operator_model_loads_and_classifies(operator_model):
    root, artefacts, _ = operator_model
    clf = TextClassifier.load(root / "model", threads=1)
    analyses = clf.classify(["em bn tuổi r? đừng nói vs bme", "", "hello"])
    assert all(isinstance(a, TextAnalysis) for a in analyses)
    assert analyses[0].model_version == artefacts.version
    assert set(analyses[0].scores) == set(CATEGORIES)
    assert all(0.0 <= s <= 1.0 for a in analyses for s in a.scores.values())
    assert analyses[1].scores == dict.fromkeys(CATEGORIES, 0.0)
    assert {h.rule_id for h in analyses[0].rule_hits} >= {"gr.age_question.vi"}


def test_the_operator_model_runs_int8(operator_model):
    root, _, _ = operator_model
    clf = TextClassifier.load(root / "model", threads=1, quantize=True)
    assert len(clf.classify(["how old are you"])) == 1


def test_tampered_artefacts_are_refused(operator_model, tmp_path):
    root, _, _ = operator_model
    copy = tmp_path / "model"
    copy.mkdir()
    for f in (root / "model").iterdir():
        (copy / f.name).write_bytes(f.read_bytes())
    (copy / "calibration.json").write_text('{"a": [9, 9, 9, 9, 9, 9], "b": [0, 0, 0, 0, 0, 0], '
                                           '"d": [0, 0, 0, 0, 0, 0]}')
    with pytest.raises(ValueError, match="sha256"):
        TextClassifier.load(copy)


def test_retraining_reports_the_change_before_promotion(operator_model, tmp_path):
    root, artefacts, _ = operator_model
    decisions = [{"text": f"chú mua điện thoại cho cháu số {i}, bí mật nhé", "labels": ["grooming"]}
                 for i in range(20)]
    decisions += [{"text": f"thông báo họp phụ huynh lớp {i}", "labels": []} for i in range(20)]
    report = retrain_from_decisions(decisions, tmp_path / "candidate", current_dir=root / "model",
                                    threads=1)
    assert report["current_version"] == artefacts.version
    assert {"validation", "new_decisions"} <= set(report["metrics"])
    assert {"current", "candidate"} == set(report["metrics"]["validation"])
    assert report["promoted"] is False
    assert json.loads((root / "model" / "model.json").read_text())["version"] == artefacts.version
