"""Text classification for harmwatch: Vietnamese and English child-safety harms.

Public API (stable, what the analyzer calls)::

    from classifiers.text import TextClassifier
    clf = TextClassifier.load(model_dir=None, threads=None, quantize=False)
    analyses = clf.classify(["post text", ...])   # list[harmwatch.contract.TextAnalysis]

See ``classifiers/text/README.md`` for the pipeline, the artefacts and the commands.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from classifiers.text.classifier import TextClassifier

__all__ = ["TextClassifier"]


def __getattr__(name: str) -> Any:
    # Imported lazily: torch and transformers take seconds to import, and `harmwatch --help`
    # or the rules alone must not pay for them.
    if name == "TextClassifier":
        from classifiers.text.classifier import TextClassifier

        return TextClassifier
    raise AttributeError(name)
