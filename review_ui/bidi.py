"""Crawled text on a page without its direction controls taking effect (bidi spoofing).

Unicode bidirectional controls reorder what follows them: an author name ending in
U+202E RIGHT-TO-LEFT OVERRIDE turns the link printed after it around (``…/u/gpj.exe``
reads ``exe.jpg…``), a title of U+202E then ``TXT.exe`` reads "exe.TXT". The one :func:`crawled`
filter, used by the UI's templates and the evidence pack's summary, isolates every
crawled value and shows its controls instead of applying them.
"""

from __future__ import annotations

import re

from markupsafe import Markup, escape

# Unicode's bidirectional formatting characters: each can reorder the text after it.
BIDI_CONTROLS: dict[str, str] = {
    "\u061c": "ARABIC LETTER MARK", "\u200e": "LEFT-TO-RIGHT MARK",
    "\u200f": "RIGHT-TO-LEFT MARK", "\u202a": "LEFT-TO-RIGHT EMBEDDING",
    "\u202b": "RIGHT-TO-LEFT EMBEDDING", "\u202c": "POP DIRECTIONAL FORMATTING",
    "\u202d": "LEFT-TO-RIGHT OVERRIDE", "\u202e": "RIGHT-TO-LEFT OVERRIDE",
    "\u2066": "LEFT-TO-RIGHT ISOLATE", "\u2067": "RIGHT-TO-LEFT ISOLATE",
    "\u2068": "FIRST STRONG ISOLATE", "\u2069": "POP DIRECTIONAL ISOLATE",
}
_BIDI_SPLIT = re.compile("([" + "".join(BIDI_CONTROLS) + "])")


def _control_mark(char: str) -> Markup:
    code = f"U+{ord(char):04X}"
    return Markup('<span class="bidi-control" title="{} {}">{}</span>').format(
        code, BIDI_CONTROLS[char], code)


def crawled(value: object) -> Markup:
    """A crawled (or otherwise outsider-written) value for the page: isolated and defused.

    Wrapped in ``<bdi>`` (``unicode-bidi: isolate``), so its direction cannot leak into the
    text around it — an author name ending in U+202E can no longer turn the link after it
    around; bidi control characters inside it are replaced by a visible mark naming them
    (``U+202E``), so a title of U+202E then ``TXT.exe`` reads as what it is, not "exe.TXT". The
    value's text is escaped as usual. For element content only: never inside an attribute
    or ``<title>``. Templates apply it as ``{{ value | crawled }}``.
    """
    if value is None or value == "":
        return Markup("")
    parts = _BIDI_SPLIT.split(str(value))
    inner = Markup("").join(_control_mark(part) if part in BIDI_CONTROLS else escape(part)
                            for part in parts if part)
    return Markup("<bdi>{}</bdi>").format(inner)
