"""Why an item is in front of the reviewer, in the reviewer's language.

The analyzer writes its reasons in English into the message and the document (for logs,
exports and other tools). The item page rebuilds them from the document's structured
fields — the urgent (self-harm path) marker, bank matches, category scores, rule hits,
media that could not be hashed — in the same order and with the same cap, so a
Vietnamese analyst reads them in Vietnamese.
"""

from __future__ import annotations

from typing import Any

from review_ui import i18n

MAX_REASONS = 12
EXACT = ("md5", "sha1", "sha256")


def item_reasons(item: dict[str, Any], floor: float,
                 thresholds: dict[str, float] | None = None) -> list[str]:
    """The item's reasons in the active language; the stored ones if nothing structured.

    A category score is a reason when it reaches the recall floor or that category's
    threshold in force (``thresholds``), whichever is lower.
    """
    reasons = [*_urgent_reasons(item), *_match_reasons(item),
               *_score_reasons(item, floor, thresholds or {}),
               *_rule_reasons(item), *_media_reasons(item)]
    return reasons[:MAX_REASONS] if reasons else list(item.get("reasons") or [])


def _urgent_reasons(item: dict[str, Any]) -> list[str]:
    """The analyzer's ``URGENT_REASON``, first, when the item is on the self-harm path."""
    if not item.get("urgent"):
        return []
    return [i18n.gettext("urgent: possible self-harm, a young person may be at risk now")]


def _match_reasons(item: dict[str, Any]) -> list[str]:
    out = []
    for match in item.get("matches") or []:
        algorithm, distance = match.get("algorithm"), match.get("distance")
        if algorithm in EXACT:
            how = i18n.gettext("identical file")
        elif algorithm == "crop_resistant":
            how = i18n.gettext("cropped copy: crop-resistant hash, pHash distance %(distance)s"
                               ) % {"distance": distance}
        else:
            how = i18n.gettext("%(algorithm)s distance %(distance)s") % {
                "algorithm": algorithm, "distance": distance}
        if match.get("category"):
            how += i18n.gettext(", category %(category)s") % {"category": match["category"]}
        out.append(i18n.gettext("image matches hash bank %(bank)s (%(how)s)") % {
            "bank": match.get("bank"), "how": how})
    return out


def _score_reasons(item: dict[str, Any], floor: float, thresholds: dict[str, float]) -> list[str]:
    scores = item.get("scores") or {}
    return [i18n.gettext("%(category)s score %(score)s") % {
                "category": i18n.gettext(category), "score": i18n.format_number(score)}
            for category, score in sorted(scores.items(), key=lambda kv: -kv[1])
            if score >= min(floor, thresholds.get(category, floor))]


def _rule_reasons(item: dict[str, Any]) -> list[str]:
    out, seen = [], set()
    for hit in item.get("rule_hits") or []:
        if hit.get("rule_id") in seen:
            continue
        seen.add(hit.get("rule_id"))
        out.append(i18n.gettext("rule %(rule)s (%(category)s) matched \u201c%(text)s\u201d") % {
            "rule": hit.get("rule_id"), "category": i18n.gettext(hit.get("category") or ""),
            "text": hit.get("matched")})
    return out


def _media_reasons(item: dict[str, Any]) -> list[str]:
    return [i18n.gettext("image %(number)s not hashed: %(error)s") % {
                "number": number, "error": media["error"]}
            for number, media in enumerate(item.get("media") or [], start=1)
            if media.get("error")]
