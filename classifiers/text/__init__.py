"""Text classification for harmwatch: Vietnamese and English child-safety harms.

Public API (stable, what the analyzer calls)::

    from classifiers.text.classifier import TextClassifier
    clf = TextClassifier.load(model_dir=None, threads=None, quantize=False)
    analyses = clf.classify(["post text", ...])   # list[harmwatch.contract.TextAnalysis]

See ``classifiers/text/README.md`` for the pipeline, the artefacts and the commands.
"""
