"""The analyzer's one integration point with the analysis engines.

``classifiers/text`` (rules + transformer), ``classifiers/media`` (safe decoding and
hashes) and ``classifiers/banks`` (hash-bank matching) are built and versioned on their
own; the analyzer reaches them only through :class:`Engines`, so an engine's API change
is absorbed here and nowhere else. Heavy imports (torch, PIL) happen in :meth:`Engines.load`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from harmwatch.contract import HashMatch, MediaHashes, TextAnalysis
from harmwatch.settings import Settings


class TextEngine(Protocol):
    model_version: str
    # The model's default queue threshold per category ({} for the rules alone): a post that
    # reaches one is forwarded even below the recall floor, or the queue could never show it.
    default_thresholds: dict[str, float]

    def classify(self, texts: list[str]) -> list[TextAnalysis]: ...


@dataclass(frozen=True)
class HashedImage:
    """An image's contract hashes plus the engine's full result (PDQ variants, frames)."""

    hashes: MediaHashes
    full: Any | None
    data: bytes | None = None  # kept for the crop-resistant hash, computed only if needed


def load_text_engine(settings: Settings) -> TextEngine:
    """The transformer classifier from ``text_model_dir``, or the rules alone when the
    settings say so (the review queue takes its default thresholds from the same model)."""
    if not settings.analyzer_text_model:
        from classifiers.text.rules_only import RulesOnlyClassifier

        return RulesOnlyClassifier()
    from classifiers.text.classifier import TextClassifier

    return TextClassifier.load(settings.text_model_dir)


class Engines:
    """Text classification, image hashing and bank matching, loaded once per process."""

    def __init__(self, text: TextEngine, matcher: Any) -> None:
        self.text = text
        self.matcher = matcher

    @classmethod
    def load(cls, settings: Settings) -> Engines:
        """The text engine per the settings, and a matcher over the banks directory.

        The matcher re-reads the bank store's change counter before matching, so banks an
        admin imports reach running analyzers without a restart.
        """
        from classifiers.banks.matcher import Matcher
        from classifiers.banks.store import BankStore

        return cls(load_text_engine(settings), Matcher(BankStore(settings.resolved_banks_dir)))

    @property
    def version(self) -> str:
        """What produced an analysis, recorded in every ``AnalysedPost``."""
        return f"text={self.text.model_version}"

    def classify(self, texts: list[str]) -> list[TextAnalysis]:
        """One :class:`TextAnalysis` per text, in order (batched for the model's sake)."""
        return self.text.classify(texts)

    @property
    def default_thresholds(self) -> dict[str, float]:
        return dict(getattr(self.text, "default_thresholds", {}))

    def hash_image(self, data: bytes) -> HashedImage:
        """Hashes of one image; an undecodable one keeps its byte hashes and an error."""
        from classifiers.media.hashing import ImageRefused, crypto_hashes, hash_image

        try:
            full = hash_image(data)
        except ImageRefused as exc:
            crypto = crypto_hashes(data) if data else None
            return HashedImage(MediaHashes(
                sha256=crypto.sha256 if crypto else None, md5=crypto.md5 if crypto else None,
                sha1=crypto.sha1 if crypto else None, error=str(exc)), None)
        return HashedImage(full.to_contract(), full, data)

    def match(self, image: HashedImage) -> list[HashMatch]:
        """Bank entries this image matches (exact hashes; every frame's PDQ variants and
        pHash within the banks' radius; a near pHash confirmed by the crop-resistant hash),
        allow lists applied."""
        from classifiers.media.hashing import ImageRefused, crop_resistant_hash

        def crop_resistant() -> str | None:
            try:
                return crop_resistant_hash(image.data) if image.data else None
            except ImageRefused:
                return None

        return self.matcher.match(image.full if image.full is not None else image.hashes,
                                  crop_resistant)
