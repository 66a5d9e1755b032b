"""Text normalisation for Vietnamese and English posts, keeping a map back to the original.

People who harm children write to be missed: ``s.e.x``, ``n00ds``, ``ko ai bjt dau``, Cyrillic
letters that look Latin, emoji instead of words. Every step here undoes one of those tricks,
and every character of the result remembers which span of the *original* text it came from,
so a rule that matches the normalised text can highlight the original words in the review UI.

Steps, in order (:func:`normalize`): NFC; zero-width characters removed; look-alike and
full-width characters to ASCII (one to one); lower case; emoji to words; leetspeak digits
between letters; spaced or dotted single letters joined; letter runs of 3+ shortened. Then,
unless the text is English, Vietnamese teencode is expanded (:func:`expand_teencode`).
:func:`fold` removes diacritics one character for one, so rules match text typed with or
without them.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

LETTER = r"[^\W\d_]"
_COMBINING = "\u0300-\u036f\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f"
_DECOMPOSED = re.compile(f"[^{_COMBINING}][{_COMBINING}]+")
_INVISIBLE = re.compile("[\u00ad\u200b-\u200f\u2060-\u2064\ufeff]")

# Letters from other scripts that render like Latin ones (one for one, so offsets stay).
_LOOKALIKES = str.maketrans({
    "а": "a", "е": "e", "о": "o", "р": "p", "с": "c", "у": "y", "х": "x", "і": "i", "ј": "j",
    "ѕ": "s", "к": "k", "м": "m", "н": "h", "т": "t", "в": "b", "А": "a", "Е": "e", "О": "o",
    "Р": "p", "С": "c", "Х": "x", "І": "i", "К": "k", "М": "m", "Н": "h", "Т": "t", "В": "b",
    "α": "a", "ο": "o", "ε": "e", "ι": "i", "κ": "k", "ν": "v", "ρ": "p", "τ": "t", "υ": "u",
    "Α": "a", "Β": "b", "Ε": "e", "Η": "h", "Ι": "i", "Κ": "k", "Μ": "m", "Ν": "n", "Ο": "o",
    "Ρ": "p", "Τ": "t", "Χ": "x", "Υ": "y", "Ζ": "z",
})

# Emoji used as words in grooming and exploitation talk; mapped to the word rules look for.
EMOJI_WORDS: dict[str, str] = {
    "🤫": "secret", "🤐": "secret", "📸": "photo", "📷": "photo", "🤳": "selfie",
    "📹": "video", "🎥": "video", "💰": "money", "💵": "money", "💸": "money", "🤑": "money",
    "🎁": "gift", "🍆": "eggplant", "🍑": "peach", "💦": "drops", "👅": "tongue",
    "🔞": "18+", "🔪": "knife", "🗡": "knife", "🔫": "gun", "💊": "pills", "🩸": "blood",
    "⛓": "chains", "🚗": "car", "🏨": "hotel", "👧": "girl", "👦": "boy", "👶": "baby",
}
_EMOJI = re.compile("|".join(re.escape(e) for e in sorted(EMOJI_WORDS, key=len, reverse=True))
                    + "\ufe0f?")
_LEET = {"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t"}
_LEET_RUN = re.compile(f"(?<={LETTER})[013457]+(?={LETTER})")
_SPACED = re.compile(f"(?<![^\\W_]){LETTER}(?:[ .\\-_*·]{LETTER}){{2,}}(?![^\\W_])")
_REPEATS = re.compile(f"({LETTER})\\1{{2,}}")

# Vietnamese teencode and chat abbreviations → standard words (matched as whole words).
TEENCODE: dict[str, str] = {
    "ko": "không", "k": "không", "kh": "không", "khg": "không", "hok": "không", "hk": "không",
    "hông": "không", "j": "gì", "gi": "gì", "dc": "được", "đc": "được", "dk": "được",
    "đk": "được", "ns": "nói", "mk": "mình", "mik": "mình", "mn": "mọi người", "e": "em",
    "a": "anh", "ib": "inbox", "ny": "người yêu", "vs": "với", "z": "vậy", "v": "vậy",
    "r": "rồi", "ntn": "như thế nào", "hnay": "hôm nay", "trc": "trước", "bít": "biết",
    "bjt": "biết", "bik": "biết", "bh": "bao giờ", "bg": "bao giờ", "cx": "cũng", "ck": "chồng",
    "vk": "vợ", "bme": "bố mẹ", "bm": "bố mẹ", "ms": "mới", "nhìu": "nhiều", "iu": "yêu",
    "thik": "thích", "đag": "đang", "dag": "đang", "nt": "nhắn tin",
}
_BN_AGE = re.compile(r"\bbn(?=\s+(?:tuổi|tuoi|t\b))")
_TEENCODE = re.compile(r"\b(?:" + "|".join(sorted(map(re.escape, TEENCODE), key=len,
                                                   reverse=True)) + r"|bn)\b")
_FOLDS = str.maketrans({"đ": "d", "Đ": "D"})


@dataclass(frozen=True)
class Normalized:
    """Normalised text; ``starts[i]:ends[i]`` is the original span behind character ``i``."""

    text: str
    starts: tuple[int, ...]
    ends: tuple[int, ...]

    def span(self, start: int, end: int) -> tuple[int, int]:
        """The original-text span behind normalised characters ``start:end`` (end exclusive)."""
        if end <= start:
            pos = self.starts[start] if start < len(self.starts) else (self.ends[-1] if self.ends else 0)
            return pos, pos
        return min(self.starts[start:end]), max(self.ends[start:end])


def _identity(text: str) -> Normalized:
    return Normalized(text, tuple(range(len(text))), tuple(range(1, len(text) + 1)))


def _sub(norm: Normalized, pattern: re.Pattern[str], repl: Callable[[re.Match[str]], str]) -> Normalized:
    """``re.sub`` that keeps the offset map: replacement characters inherit the match's span."""
    text, starts, ends = [], [], []
    last = 0
    for match in pattern.finditer(norm.text):
        a, b = match.span()
        text.append(norm.text[last:a])
        starts.extend(norm.starts[last:a])
        ends.extend(norm.ends[last:a])
        new = repl(match)
        if b > a:
            lo, hi = min(norm.starts[a:b]), max(norm.ends[a:b])
        else:
            lo = hi = norm.starts[a] if a < len(norm.starts) else len(norm.text)
        text.append(new)
        starts.extend([lo] * len(new))
        ends.extend([hi] * len(new))
        last = b
    if last == 0 and not text:
        return norm
    text.append(norm.text[last:])
    starts.extend(norm.starts[last:])
    ends.extend(norm.ends[last:])
    return Normalized("".join(text), tuple(starts), tuple(ends))


def _map_chars(norm: Normalized, convert: Callable[[str], str]) -> Normalized:
    """Apply a per-character conversion; characters that grow keep their source span."""
    out = [convert(ch) for ch in norm.text]
    if all(len(c) == 1 for c in out):
        return Normalized("".join(out), norm.starts, norm.ends)
    starts = tuple(s for c, s in zip(out, norm.starts, strict=True) for _ in c)
    ends = tuple(e for c, e in zip(out, norm.ends, strict=True) for _ in c)
    return Normalized("".join(out), starts, ends)


@lru_cache(maxsize=4096)
def _ascii_twin(ch: str) -> str:
    """Full-width and mathematical letters/digits to ASCII; other characters unchanged."""
    if ch.isascii():
        return ch
    looked = ch.translate(_LOOKALIKES)
    if looked != ch:
        return looked
    compat = unicodedata.normalize("NFKC", ch)
    return compat if len(compat) == 1 and compat.isascii() and compat.isalnum() else ch


def _nfc(norm: Normalized) -> Normalized:
    if unicodedata.is_normalized("NFC", norm.text):
        return norm
    return _sub(norm, _DECOMPOSED, lambda m: unicodedata.normalize("NFC", m.group()))


def _teencode(match: re.Match[str]) -> str:
    word = match.group()
    return "bạn" if word == "bn" else TEENCODE[word]


def normalize(text: str) -> Normalized:
    """Undo the language-independent obfuscations (everything but teencode)."""
    norm = _nfc(_identity(text))
    norm = _sub(norm, _INVISIBLE, lambda m: "")
    norm = _map_chars(norm, lambda ch: "".join(_ascii_twin(c) for c in ch.lower()))
    norm = _sub(norm, _EMOJI, lambda m: f" {EMOJI_WORDS[m.group().rstrip(chr(0xFE0F))]} ")
    norm = _sub(norm, _LEET_RUN, lambda m: "".join(_LEET[c] for c in m.group()))
    norm = _sub(norm, _SPACED, lambda m: re.sub(r"[ .\-_*·]", "", m.group()))
    return _sub(norm, _REPEATS, lambda m: m.group(1))


def expand_teencode(norm: Normalized) -> Normalized:
    """Vietnamese chat abbreviations to words (``ko`` → ``không``); not for English text."""
    norm = _sub(norm, _BN_AGE, lambda m: "bao nhiêu")
    return _sub(norm, _TEENCODE, _teencode)


def fold(text: str) -> str:
    """Remove Vietnamese (and other) diacritics one character for one: 'Đừng nói' → 'dung noi'.

    Kept length-preserving so that positions in the folded text are positions in the
    normalised text; rules are written in folded form and so match both spellings.
    """
    return "".join(_fold_char(ch) for ch in text.translate(_FOLDS))


@lru_cache(maxsize=4096)
def _fold_char(ch: str) -> str:
    if ch.isascii():
        return ch
    base = unicodedata.normalize("NFD", ch)[0]
    return base if base.isascii() else ch
