"""Server-side charts (matplotlib, Agg backend) as PNG: no JavaScript library, no CDN.

Labels go through gettext so a Vietnamese admin gets Vietnamese axes; matplotlib's
bundled DejaVu Sans carries the Vietnamese diacritics.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402 - the backend must be chosen first
from matplotlib.figure import Figure  # noqa: E402

from review_ui.admin.tuning import BUCKET, Curve  # noqa: E402
from review_ui.i18n import gettext as _  # noqa: E402

CURRENT_COLOUR, CANDIDATE_COLOUR, DEFAULT_COLOUR = "#a33", "#1f5fbf", "#6a3d9a"


def png(figure: Figure) -> bytes:
    """The figure as PNG bytes; the figure is closed (no pyplot state leaks between requests)."""
    out = io.BytesIO()
    figure.savefig(out, format="png", dpi=100, bbox_inches="tight")
    plt.close(figure)
    return out.getvalue()


def _mark(axis: plt.Axes, current: float, candidate: float | None, vertical: bool,
          default: float | None = None) -> None:
    line = axis.axvline if vertical else axis.axhline
    if default is not None:  # drawn first and dash-dotted: visible even under the current line
        line(default, color=DEFAULT_COLOUR, linestyle="-.", linewidth=2.2,
             label=_("model default threshold"))
    line(current, color=CURRENT_COLOUR, linestyle="--", label=_("current threshold"))
    if candidate is not None and candidate != current:
        line(candidate, color=CANDIDATE_COLOUR, linestyle=":", label=_("candidate threshold"))


def pr_curve(data: Curve, current: float, candidate: float | None = None,
             default: float | None = None) -> Figure:
    """Precision and recall against the threshold, with the current, the model's default
    and a candidate threshold marked."""
    figure, axis = plt.subplots(figsize=(5.5, 3.4))
    xs = data.thresholds
    axis.plot(xs, [p if p is not None else float("nan") for p in data.precision],
              label=_("precision"), color="#1f7a3a")
    axis.plot(xs, [r if r is not None else float("nan") for r in data.recall],
              label=_("recall"), color="#7a4b1f")
    _mark(axis, current, candidate, vertical=True, default=default)
    axis.set_xlim(0, 1)
    axis.set_ylim(0, 1.02)
    axis.set_xlabel(_("threshold"))
    axis.set_title(_("Precision and recall by threshold (%(n)s decisions)") % {"n": data.decided})
    axis.grid(alpha=0.3)
    axis.legend(loc="lower left", fontsize=8)
    return figure


def histogram(data: Curve, current: float, candidate: float | None = None,
              default: float | None = None) -> Figure:
    """Scores of confirmed vs dismissed items, side by side in 0.05-wide bins."""
    figure, axis = plt.subplots(figsize=(5.5, 3.4))
    width = 0.05
    group = round(width / BUCKET)
    starts = [i * width for i in range(round(1 / width))]
    pos = _regroup(data.positives, group, len(starts))
    neg = _regroup(data.negatives, group, len(starts))
    axis.bar([s + width * 0.25 for s in starts], pos, width=width * 0.45, color="#a33",
             label=_("confirmed"))
    axis.bar([s + width * 0.7 for s in starts], neg, width=width * 0.45, color="#8a94a6",
             label=_("dismissed"))
    _mark(axis, current, candidate, vertical=True, default=default)
    axis.set_xlim(0, 1)
    axis.set_xlabel(_("score"))
    axis.set_ylabel(_("items"))
    axis.set_title(_("Scores of decided items"))
    axis.legend(fontsize=8)
    return figure


def _regroup(counts: Sequence[int], group: int, bins: int) -> list[int]:
    """Merge 0.01 buckets into wider bins; a score of exactly 1.0 joins the last bin."""
    merged = [sum(counts[i * group:(i + 1) * group]) for i in range(bins)]
    merged[-1] += sum(counts[bins * group:])
    return merged
