"""Explainable lexicon and pattern rules, loaded from versioned YAML files in this folder.

A rule hit carries the character span it matched in the *original* post, so the review UI
can highlight the words; rules are matched on the normalised, diacritic-folded text (see
``rules.yaml`` for how to write one) and spans are mapped back through the offsets that
normalisation keeps.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import yaml

from classifiers.text.normalize import Normalized, fold
from harmwatch.contract import CATEGORIES, RuleHit

DEFAULT_RULES = Path(__file__).resolve().parent / "rules.yaml"


@dataclass(frozen=True)
class Rule:
    rule_id: str
    category: str
    weight: float
    pattern: re.Pattern[str]
    urgent: bool = False  # a hit alone puts the post on the self-harm path


@dataclass(frozen=True)
class RuleSet:
    version: str
    rules: tuple[Rule, ...]

    @cached_property
    def urgent_rule_ids(self) -> frozenset[str]:
        """Rules whose hit alone marks a post urgent (see ``rules.yaml``); built once, read per post."""
        return frozenset(r.rule_id for r in self.rules if r.urgent)

    def is_urgent(self, hits: list[RuleHit]) -> bool:
        urgent = self.urgent_rule_ids
        return any(hit.rule_id in urgent for hit in hits)

    def match(self, original: str, norm: Normalized) -> list[RuleHit]:
        """Every rule hit in the post, spans on ``original``; a rule fires once per span."""
        folded = fold(norm.text)
        hits: dict[tuple[str, int, int], RuleHit] = {}
        for rule in self.rules:
            for m in rule.pattern.finditer(folded):
                start, end = norm.span(*m.span())
                key = (rule.rule_id, start, end)
                if end > start and key not in hits:
                    hits[key] = RuleHit(rule_id=rule.rule_id, category=rule.category, start=start,
                                        end=end, matched=original[start:end], weight=rule.weight)
        return sorted(hits.values(), key=lambda h: (h.start, h.rule_id))


def evidence(hits: list[RuleHit]) -> dict[str, float]:
    """Per-category rule evidence in [0, 1]: the noisy-OR of the weights of distinct rules."""
    best: dict[tuple[str, str], float] = {}
    for hit in hits:
        key = (hit.category, hit.rule_id)
        best[key] = max(best.get(key, 0.0), hit.weight)
    out = dict.fromkeys(CATEGORIES, 0.0)
    for (category, _), weight in best.items():
        out[category] = 1.0 - (1.0 - out[category]) * (1.0 - weight)
    return out


def load_rules(path: Path = DEFAULT_RULES) -> RuleSet:
    """Load and compile a rules file; an unknown category or bad regex fails with the rule id."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    rules = []
    for entry in data["rules"]:
        if entry["category"] not in CATEGORIES:
            raise ValueError(f"{path}: rule {entry['id']}: unknown category {entry['category']!r}")
        for source in entry["patterns"]:
            try:
                pattern = re.compile(rf"(?<![\w']){source}(?![\w'])", re.IGNORECASE)
            except re.error as exc:
                raise ValueError(f"{path}: rule {entry['id']}: bad pattern {source!r}: {exc}") from exc
            rules.append(Rule(entry["id"], entry["category"], float(entry["weight"]), pattern,
                              urgent=bool(entry.get("urgent", False))))
    return RuleSet(version=str(data["version"]), rules=tuple(rules))
