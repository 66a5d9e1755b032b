"""The demo tells the truth about the model: its harmless posts stay out of the queue and
its harmful ones reach it, in their own category, at the shipped default thresholds.

The demo forum (services/demo_site/content.py) is what a new user sees first; its posts
were written before this model and are not in its training data.
"""

from __future__ import annotations

import pytest

from classifiers.text.classifier import TextClassifier
from services.demo_site.content import HARMFUL, THREADS

POSTS = [p for t in THREADS for p in t.posts]
# The three harmless posts issue 13 found queued by the previous model (a child's bike for
# sale, a drawing club, a peer pointing a friend to 111): never queued again.
NAMED_IN_ISSUE_13 = {503, 104, 408}
# The shipped model's own errors on the demo, reported in the model card rather than hidden:
# two parents' replies about keeping phones in the living room cross the low self_harm
# threshold (chosen for 95 % recall). A better model may drop them; none may be added.
KNOWN_FALSE_ALARMS = {202, 206}


@pytest.fixture(scope="module")
def analysed():
    clf = TextClassifier.load(threads=2)
    thresholds = clf.artefacts.thresholds
    analyses = clf.classify([p.text for p in POSTS])
    return {p.post_id: (p, a) for p, a in zip(POSTS, analyses, strict=True)}, thresholds


def queued(analysis, thresholds) -> set[str]:
    return {c for c, s in analysis.scores.items() if s >= thresholds[c]}


def test_every_harmful_demo_post_reaches_its_own_category(analysed):
    by_id, thresholds = analysed
    missed = {pid: (by_id[pid][0].text[:60], by_id[pid][1].scores)
              for pid, labels in HARMFUL.items()
              if not (queued(by_id[pid][1], thresholds) & set(labels)) and not
              ("self_harm" in labels and by_id[pid][1].urgent)}
    assert not missed


def test_harmless_demo_posts_stay_out_of_the_queue_but_for_the_known_errors(analysed):
    by_id, thresholds = analysed
    queued_harmless = {pid: (p.text[:60], sorted(queued(a, thresholds)), a.urgent)
                       for pid, (p, a) in by_id.items()
                       if pid not in HARMFUL and (queued(a, thresholds) or a.urgent)}
    assert not set(queued_harmless) & NAMED_IN_ISSUE_13
    assert set(queued_harmless) <= KNOWN_FALSE_ALARMS, queued_harmless


def test_the_demo_cries_for_help_are_urgent(analysed):
    by_id, _ = analysed
    assert all(by_id[pid][1].urgent for pid, labels in HARMFUL.items() if "self_harm" in labels)
