"""The text rules without the transformer: the analyzer's fallback text engine."""

from __future__ import annotations

from classifiers.text.language import normalize_and_detect
from classifiers.text.rules import evidence, load_rules
from harmwatch.contract import TextAnalysis

RULES_ONLY_MODEL = "rules-only"


class RulesOnlyClassifier:
    """The text rules without the transformer (``HARMWATCH_ANALYZER_TEXT_MODEL=false``).

    Each category's score is the rules' own evidence (noisy-OR of the weights of the rules
    that fired), uncalibrated. It is the documented mode for hosts without the model and for
    pipeline tests about delivery rather than classification; ``model_version`` says
    ``rules-only`` so such analyses are recognisable in the index.
    """

    model_version = RULES_ONLY_MODEL
    default_thresholds: dict[str, float] = {}  # the rules carry no trained thresholds

    def __init__(self) -> None:
        self.rules = load_rules()

    def classify(self, texts: list[str]) -> list[TextAnalysis]:
        out = []
        for text in texts:
            norm, language = normalize_and_detect(text)
            hits = self.rules.match(text, norm)
            out.append(TextAnalysis(language=language, scores=evidence(hits),
                                    model_version=RULES_ONLY_MODEL,
                                    rules_version=self.rules.version, rule_hits=hits,
                                    urgent=self.rules.is_urgent(hits)))
        return out
