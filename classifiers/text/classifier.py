"""The text classifier the analyzer calls: normalise → language → rules + model → scores.

    from classifiers.text.classifier import TextClassifier
    clf = TextClassifier.load()                       # models/text + its encoder
    [analysis] = clf.classify(["Em bn tuổi r? Đừng nói vs bme nhé"])
    analysis.scores["grooming"], analysis.rule_hits, analysis.model_version

``classify`` returns one :class:`harmwatch.contract.TextAnalysis` per input, in order: the
language, a calibrated probability per category, the rule hits with spans on the original
text, the model and rules versions, and whether the post is on the self-harm path
(``urgent``: the self_harm score reached the model's urgent threshold, or an urgent rule
fired). Long posts are read whole: each category takes its highest window. Load once per
process and reuse: loading takes seconds, classifying a batch tens of milliseconds per post on one core.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from classifiers.text.artefacts import (
    DEFAULT_ENCODER_DIR,
    DEFAULT_MODEL_DIR,
    Artefacts,
    load_artefacts,
    resolve_encoder_dir,
)
from classifiers.text.encoder import Encoder, max_per_owner, set_threads
from classifiers.text.language import normalize_and_detect
from classifiers.text.normalize import Normalized
from classifiers.text.rules import RuleSet, evidence, load_rules
from harmwatch.contract import CATEGORIES, RuleHit, TextAnalysis


class TextClassifier:
    """Rules and a transformer encoder with a trained head, combined and calibrated."""

    def __init__(self, encoder: Encoder, artefacts: Artefacts, rules: RuleSet,
                 batch_size: int = 32) -> None:
        self.encoder = encoder
        self.artefacts = artefacts
        self.rules = rules
        self.batch_size = batch_size

    @classmethod
    def load(cls, model_dir: Path | str | None = None, threads: int | None = None,
             quantize: bool = False, encoder_dir: Path | str | None = None,
             batch_size: int = 32) -> TextClassifier:
        """Load the trained artefacts from ``model_dir`` (default ``models/text``).

        ``encoder_dir`` overrides the encoder named in the artefacts' manifest (it must be
        the one the head was trained on); ``threads`` sets torch's CPU threads;
        ``quantize`` runs the encoder with dynamic int8 weights.
        """
        set_threads(threads)
        model_dir = Path(model_dir) if model_dir else DEFAULT_MODEL_DIR
        artefacts = load_artefacts(model_dir)
        enc_dir = Path(encoder_dir) if encoder_dir else resolve_encoder_dir(artefacts.manifest)
        if not (enc_dir / "config.json").exists():
            hint = ("run `harmwatch setup` (it converts the bundled encoder)"
                    if enc_dir == DEFAULT_ENCODER_DIR else
                    "point --encoder-dir / the manifest at a Hugging Face encoder directory")
            raise FileNotFoundError(f"no text encoder at {enc_dir}: {hint}")
        meta = artefacts.manifest["encoder"]
        encoder = Encoder(enc_dir, prefix=meta.get("prefix", ""),
                          max_length=meta.get("max_length", 256), quantize=quantize,
                          overlay=artefacts.overlay)
        return cls(encoder, artefacts, load_rules(), batch_size=batch_size)

    @property
    def model_version(self) -> str:
        return self.artefacts.version

    @property
    def default_thresholds(self) -> dict[str, float]:
        """The model's default queue threshold per category (``model.json``)."""
        return self.artefacts.thresholds

    def classify(self, texts: list[str]) -> list[TextAnalysis]:
        """One :class:`TextAnalysis` per text, in input order."""
        prepared = [normalize_and_detect(t) for t in texts]
        hits = [self.rules.match(t, norm) for t, (norm, _) in zip(texts, prepared, strict=True)]
        scores = self.score(texts, prepared, hits)
        urgent_at = self.artefacts.urgent_threshold
        self_harm = CATEGORIES.index("self_harm")
        return [
            TextAnalysis(language=lang, scores=dict(zip(CATEGORIES, map(float, row), strict=True)),
                         model_version=self.model_version, rules_version=self.rules.version,
                         rule_hits=hit_list,
                         urgent=bool(row[self_harm] >= urgent_at or self.rules.is_urgent(hit_list)))
            for (_, lang), row, hit_list in zip(prepared, scores, hits, strict=True)
        ]

    def score(self, texts: list[str], prepared: list[tuple[Normalized, str]],
              hits: list[list[RuleHit]]) -> np.ndarray:
        """Calibrated scores (n, C); posts with no text at all score zero without the model."""
        out = np.zeros((len(texts), len(CATEGORIES)))
        live = [i for i, t in enumerate(texts) if t.strip()]
        if not live:
            return out
        model_prob = self.model_probabilities([prepared[i][0].text for i in live])
        rule_ev = np.array([[evidence(hits[i])[c] for c in CATEGORIES] for i in live])
        out[live] = self.artefacts.calibrator.apply(model_prob, rule_ev)
        return np.round(out, 4)

    def model_probabilities(self, normalised_texts: list[str]) -> np.ndarray:
        """The head's uncalibrated sigmoid outputs for already-normalised texts.

        Every window of a long text is scored; each category keeps its highest window, so
        harm in the middle of a long post counts as much as harm in a short one.
        """
        emb, owners = self.encoder.embed_windows(normalised_texts, batch_size=self.batch_size)
        with torch.inference_mode():
            logits = self.artefacts.head(torch.from_numpy(emb)).numpy()
        best = max_per_owner(logits, owners, len(normalised_texts))
        return torch.sigmoid(torch.from_numpy(best)).double().numpy()
