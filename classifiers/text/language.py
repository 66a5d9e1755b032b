"""Language identification: Vietnamese, English or other, offline and in microseconds.

A post is Vietnamese if it carries Vietnamese-only letters (ă â đ ê ô ơ ư and the tone marks
that only Vietnamese stacks on vowels) or, typed without diacritics, if its words are mostly
common Vietnamese function words and teencode; English by English function words. Short
chat messages are exactly where statistical identifiers fail, and these two languages are
all harmwatch's models are trained on, so a small, explainable scorer is the better tool.
"""

from __future__ import annotations

import re

from classifiers.text.normalize import Normalized, expand_teencode, fold, normalize

_VI_LETTERS = re.compile(
    "[ăâđêôơưạảấầẩẫậắằẳẵặẹẻẽếềểễệỉịọỏốồổỗộớờởỡợụủứừửữựỳỵỷỹ]"
)
_WORD = re.compile(r"[^\W\d_]+")
_LATIN = re.compile(r"[a-z]")
VI_WORDS = frozenset([
    "khong", "ko", "k", "la", "cua", "va", "em", "anh", "ban", "nhe", "roi", "di", "co",
    "duoc", "dc", "nay", "minh", "mk", "toi", "chi", "be", "con", "cho", "voi", "vs", "gi",
    "j", "nao", "the", "nhu", "mot", "nhung", "cac", "tren", "duoi", "ve", "lam", "biet",
    "nguoi", "mat", "tuoi", "oi", "a", "day", "do", "thi", "ma", "vay", "hay", "tre",
    "dung", "noi", "ai", "nha", "cung", "cx", "nhieu", "gio", "bao", "phai", "dau", "sao",
])
EN_WORDS = frozenset([
    "the", "and", "you", "to", "is", "of", "a", "in", "it", "your", "are", "this", "for",
    "me", "my", "with", "what", "how", "dont", "i", "be", "on", "that", "have",
    "not", "can", "just", "if", "do", "we", "at", "so", "was", "but", "all", "they", "he",
    "she", "him", "her", "them", "will", "from", "or", "an", "our", "about", "get", "want",
    "send", "meet", "secret", "tell",
])


# Vietnamese syllables end in a vowel or c, ch, m, n, ng, nh, p, t: a longer word ending in
# any of these letters is not Vietnamese, with or without diacritics ("buyers", "for").
_NON_VIETNAMESE_FINAL = frozenset("bdfjklqrsvwxz")


def _non_vietnamese_words(words: list[str]) -> int:
    # Words of one or two letters are left out: teencode uses k, j, z, r, ns for Vietnamese.
    return sum(len(w) > 2 and w[-1] in _NON_VIETNAMESE_FINAL for w in words)


def detect_language(text: str) -> str:
    """'vi', 'en' or 'other' for ``text`` (any casing, with or without diacritics)."""
    lowered = text.lower()
    words = _WORD.findall(fold(lowered))
    if not words or not _LATIN.search(" ".join(words)):
        return "other"
    vi_letters = len(_VI_LETTERS.findall(lowered))
    vi = sum(w in VI_WORDS for w in words) + 2 * vi_letters
    en = sum(w in EN_WORDS for w in words) + 0.5 * _non_vietnamese_words(words)
    if max(vi, en) == 0 or max(vi, en) < 0.2 * len(words):
        return "other"
    return "vi" if vi >= en else "en"


def normalize_and_detect(text: str) -> tuple[Normalized, str]:
    """Normalise ``text`` and identify its language (on the de-obfuscated form, so that
    ``Ѕеnd`` in Cyrillic letters counts as English); teencode is expanded unless English."""
    norm = normalize(text)
    language = detect_language(norm.text)
    return (norm if language == "en" else expand_teencode(norm)), language
