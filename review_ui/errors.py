"""The errors any UI route may raise; ``review_ui/app.py`` turns each into its HTTP answer.

They are the UI's, not the review queue's: admin pages, liaison pages and the API raise
them too (400, 404 and 409 in both languages).
"""

from __future__ import annotations


class ReviewError(ValueError):
    """A request that cannot be honoured as asked (bad filter, wrong state)."""


class NotVisible(LookupError):
    """No such item, or not one this role may see (the two are indistinguishable)."""


class Conflict(RuntimeError):
    """Someone else holds or changed the item; reload and try again."""
