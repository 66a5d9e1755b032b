"""Vietnamese and English: gettext catalogues, and dates/numbers in the user's locale.

Catalogues live in ``review_ui/locale/<lang>/LC_MESSAGES/messages.po``. A compiled
``messages.mo`` is used when present and newer than its ``.po``; otherwise the ``.po`` is
compiled in memory at start, so a fresh clone works even before a build step.
``harmwatch setup`` (what ``make install`` and the Docker image run) writes the ``.mo``
files, as does ``harmwatch ui --compile-messages``; they are git-ignored.
The active locale is a context variable set per request from the user's preference.
"""

from __future__ import annotations

import io
from contextvars import ContextVar
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path

from babel import Locale
from babel.dates import format_datetime
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal, format_percent
from babel.support import Translations

LOCALE_DIR = Path(__file__).resolve().parent / "locale"
# Catalogues of the UI's sub-packages, merged into the main one (their messages only).
PACKAGE_LOCALE_DIRS = (Path(__file__).resolve().parent / "evidence" / "locale",)
LANGUAGES = ("vi", "en")
DEFAULT_LANGUAGE = "vi"

_active: ContextVar[str] = ContextVar("harmwatch_ui_locale", default=DEFAULT_LANGUAGE)


def _paths(language: str, locale_dir: Path | None = None) -> tuple[Path, Path]:
    folder = (locale_dir or LOCALE_DIR) / language / "LC_MESSAGES"
    return folder / "messages.po", folder / "messages.mo"


def compile_catalogue(language: str, locale_dir: Path | None = None) -> bytes:
    """The ``.mo`` bytes of a language's ``.po`` catalogue."""
    po_path, _ = _paths(language, locale_dir)
    with po_path.open("rb") as handle:
        catalog = read_po(handle, locale=language)
    out = io.BytesIO()
    write_mo(out, catalog, use_fuzzy=False)
    return out.getvalue()


def write_compiled() -> list[Path]:
    """Write ``messages.mo`` next to every ``.po`` (for packaging); returns the paths."""
    written = []
    for locale_dir in (LOCALE_DIR, *PACKAGE_LOCALE_DIRS):
        for language in LANGUAGES:
            po_path, mo_path = _paths(language, locale_dir)
            if po_path.exists():
                mo_path.write_bytes(compile_catalogue(language, locale_dir))
                written.append(mo_path)
    return written


def load_catalogue(language: str, locale_dir: Path | None = None) -> Translations:
    """A language's catalogue: its ``.mo`` if up to date, else the ``.po`` compiled now."""
    po_path, mo_path = _paths(language, locale_dir)
    if mo_path.exists() and mo_path.stat().st_mtime >= po_path.stat().st_mtime:
        data = mo_path.read_bytes()
    else:
        data = compile_catalogue(language, locale_dir)
    return Translations(io.BytesIO(data), domain="messages")


@lru_cache(maxsize=len(LANGUAGES))
def translations(language: str) -> Translations:
    """The process-wide catalogue of a language, with the sub-packages' catalogues merged."""
    merged = load_catalogue(language)
    for locale_dir in PACKAGE_LOCALE_DIRS:
        if _paths(language, locale_dir)[0].exists():
            merged.merge(load_catalogue(language, locale_dir))
    return merged


def set_language(language: str) -> None:
    _active.set(language if language in LANGUAGES else DEFAULT_LANGUAGE)


def language() -> str:
    return _active.get()


def gettext(message: str) -> str:
    return translations(language()).gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return translations(language()).ngettext(singular, plural, n)


def format_time(value: str | int | float | datetime | None, timezone: str) -> str:
    """A stored time (ISO 8601 or epoch milliseconds) in the user's language and time zone."""
    if value is None or value == "":
        return ""
    if isinstance(value, (int, float)):
        moment = datetime.fromtimestamp(value / 1000, UTC)
    else:
        moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)  # stored times without a zone are UTC
    return format_datetime(moment, format="medium", tzinfo=timezone, locale=language())


def format_number(value: float | int | None, digits: int = 2) -> str:
    if value is None:
        return ""
    return format_decimal(value, format=f"#,##0.{'0' * digits}" if digits else "#,##0",
                          locale=language())


def format_share(value: float | None) -> str:
    return "" if value is None else format_percent(value, locale=language())


def language_name(code: str) -> str:
    """'Tiếng Việt' / 'English' — each language named in itself."""
    name = Locale.parse(code).get_display_name(code) or code
    return name[:1].upper() + name[1:]
