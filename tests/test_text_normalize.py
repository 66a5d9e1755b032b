"""Normalisation and language identification for Vietnamese and English posts."""

from __future__ import annotations

import unicodedata

import pytest

from classifiers.text.language import detect_language, normalize_and_detect
from classifiers.text.normalize import fold, normalize


def norm(text: str) -> str:
    return normalize_and_detect(text)[0].text


def test_nfc_composes_decomposed_vietnamese():
    decomposed = unicodedata.normalize("NFD", "Đừng nói với bố mẹ")
    assert norm(decomposed) == "đừng nói với bố mẹ"


@pytest.mark.parametrize(("raw", "expected"), [
    ("e ko bjt j het", "em không biết gì het"),
    ("bn tuổi r", "bao nhiêu tuổi rồi"),
    ("nhắn vs bn nhé", "nhắn với bạn nhé"),
    ("dc k", "được không"),
])
def test_teencode_is_expanded_in_vietnamese(raw, expected):
    assert norm(raw) == expected


def test_teencode_is_left_alone_in_english():
    normalized, language = normalize_and_detect("can you send me a photo ok")
    assert language == "en"
    assert normalized.text == "can you send me a photo ok"


def test_text_without_diacritics_folds_to_the_same_form():
    assert fold(norm("Đừng nói với bố mẹ nhé")) == fold(norm("dung noi voi bo me nhe"))
    assert len(fold("Đà Nẵng")) == len("Đà Nẵng")  # one for one, so spans stay valid


@pytest.mark.parametrize(("raw", "expected"), [
    ("s.e.x chat", "sex chat"),
    ("s e n d pics", "send pics"),
    ("n00dz", "noodz"),
    ("k1ss", "kiss"),
    ("Ѕеnd рics", "send pics"),          # Cyrillic look-alikes
    ("ｓｅｎｄ pics", "send pics"),          # full-width letters
    ("sooooo cute", "so cute"),
    ("our secret 🤫", "our secret  secret "),
    ("se\u200bnd", "send"),               # zero-width space
])
def test_obfuscation_is_undone(raw, expected):
    assert normalize(raw).text == expected


def test_numbers_that_matter_are_not_leetspeak():
    assert normalize("em 13 tuổi, gọi 111").text == "em 13 tuổi, gọi 111"
    assert normalize("12yo").text == "12yo"


def test_every_normalised_character_maps_back_into_the_original():
    original = "Ѕ.e.n.d n00dz 🤫 e ko bjt"
    normalized, _ = normalize_and_detect(original)
    assert len(normalized.starts) == len(normalized.text) == len(normalized.ends)
    for start, end in zip(normalized.starts, normalized.ends, strict=True):
        assert 0 <= start < end <= len(original)
    i = normalized.text.index("noodz")
    assert original[slice(*normalized.span(i, i + 5))] == "n00dz"


@pytest.mark.parametrize(("text", "language"), [
    ("Em năm nay bao nhiêu tuổi rồi?", "vi"),
    ("em nam nay bao nhieu tuoi roi", "vi"),
    ("e ko bjt j het", "vi"),
    ("How old are you? Don't tell your parents.", "en"),
    ("Hola amigos, ¿qué tal la fiesta?", "other"),
    ("你好，今天天气很好", "other"),
    ("", "other"),
])
def test_language_identification(text, language):
    assert detect_language(text) == language
