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

RULES_ONLY_MODEL = "rules-only"


class TextEngine(Protocol):
    model_version: str

    def classify(self, texts: list[str]) -> list[TextAnalysis]: ...


@dataclass(frozen=True)
class HashedImage:
    """An image's contract hashes plus the engine's full result (PDQ variants, frames)."""

    hashes: MediaHashes
    full: Any | None


class RulesOnlyText:
    """The text rules without the transformer (``HARMWATCH_ANALYZER_TEXT_MODEL=false``).

    Each category's score is the rules' own evidence (noisy-OR of the weights of the rules
    that fired), uncalibrated. It is the documented mode for hosts without the model and for
    pipeline tests about delivery rather than classification; ``model_version`` says
    ``rules-only`` so such analyses are recognisable in the index.
    """

    model_version = RULES_ONLY_MODEL

    def __init__(self) -> None:
        from classifiers.text.rules import load_rules

        self.rules = load_rules()

    def classify(self, texts: list[str]) -> list[TextAnalysis]:
        from classifiers.text.language import normalize_and_detect
        from classifiers.text.rules import evidence

        out = []
        for text in texts:
            norm, language = normalize_and_detect(text)
            hits = self.rules.match(text, norm)
            out.append(TextAnalysis(language=language, scores=evidence(hits),
                                    model_version=RULES_ONLY_MODEL,
                                    rules_version=self.rules.version, rule_hits=hits))
        return out


def load_text_engine(settings: Settings) -> TextEngine:
    """The transformer classifier, or the rules alone when the settings say so."""
    if not settings.analyzer_text_model:
        return RulesOnlyText()
    from classifiers.text.classifier import TextClassifier

    return TextClassifier.load()


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

    def hash_image(self, data: bytes) -> HashedImage:
        """Hashes of one image; an undecodable one keeps its byte hashes and an error."""
        from classifiers.media import ImageRefused, crypto_hashes, hash_image

        try:
            full = hash_image(data)
        except ImageRefused as exc:
            crypto = crypto_hashes(data) if data else None
            return HashedImage(MediaHashes(
                sha256=crypto.sha256 if crypto else None, md5=crypto.md5 if crypto else None,
                sha1=crypto.sha1 if crypto else None, error=str(exc)), None)
        return HashedImage(full.to_contract(), full)

    def match(self, image: HashedImage) -> list[HashMatch]:
        """Bank entries this image matches (exact hashes; every frame's PDQ variants and
        pHash within the banks' radius), allow lists applied."""
        return self.matcher.match(image.full if image.full is not None else image.hashes)
