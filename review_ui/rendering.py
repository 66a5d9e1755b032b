"""Template rendering: autoescaped Jinja2 with gettext and locale-aware formatting.

Autoescaping is on for every template, and nothing crawled is ever marked safe: rule-hit
highlighting is done by splitting text into segments that the template escapes one by
one, never by building HTML strings in Python. Crawled values go through the one
``crawled`` filter, which escapes them too and isolates their text direction.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fastapi import Request
from fastapi.templating import Jinja2Templates
from jinja2 import ChoiceLoader, Environment, FileSystemLoader, PrefixLoader, select_autoescape
from starlette.responses import Response

from harmwatch.contract import CATEGORIES
from review_ui import i18n
from review_ui.bidi import crawled
from review_ui.permissions import allowed

UI_DIR = Path(__file__).resolve().parent
TEMPLATE_DIR = UI_DIR / "templates"
# Every template folder, in one place: the review pages, the liaison pages (named
# ``evidence/<page>.html``) and the admin pages (``admin/<page>.html``).
TEMPLATE_DIRS = (TEMPLATE_DIR, UI_DIR / "evidence" / "templates" / "pages")
ADMIN_TEMPLATE_DIR = UI_DIR / "admin" / "templates"

# Navigation: (route name, label); each link shows only to the roles that may use it.
NAV: tuple[tuple[str, str], ...] = (
    ("queue_page", "Queue"),
    ("audit_page", "Audit log"),
    ("settings_page", "Settings"),
    ("admin_dashboard", "Admin"),
    ("cases_page", "Cases"),
)


def label(value: object) -> str:
    """Translate a data value (status, category, role) as plain text.

    Never pass data to ``_()``: Jinja's newstyle gettext marks the message id safe, so
    only literal strings may be message ids. This returns a str, which autoescaping escapes.
    """
    if not isinstance(value, str) or not value:
        return ""
    return i18n.gettext(value)


def web_link(url: object) -> str | None:
    """The URL if it is a plain http(s) link, else None (shown as text, never linked).

    Autoescaping stops markup, not ``javascript:`` or ``data:`` URLs in ``href``.
    """
    if not isinstance(url, str):
        return None
    scheme = urlsplit(url.strip()).scheme.lower()
    return url if scheme in ("http", "https") else None


def _environment() -> Environment:
    env = Environment(
        loader=ChoiceLoader([FileSystemLoader([str(d) for d in TEMPLATE_DIRS]),
                             PrefixLoader({"admin": FileSystemLoader(ADMIN_TEMPLATE_DIR)})]),
        autoescape=select_autoescape(default=True, default_for_string=True),
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True, lstrip_blocks=True,
    )
    env.filters["crawled"] = crawled
    env.install_gettext_callables(i18n.gettext, i18n.ngettext, newstyle=True)  # type: ignore[attr-defined]
    env.globals.update(label=label, web_link=web_link, categories=CATEGORIES, languages=i18n.LANGUAGES,
                       language_name=i18n.language_name, fmt_number=i18n.format_number,
                       fmt_share=i18n.format_share)
    return env


templates = Jinja2Templates(env=_environment())


def render(request: Request, name: str, context: dict[str, Any] | None = None,
           status_code: int = 200) -> Response:
    """Render a page with the signed-in user, CSRF token, navigation and formatters."""
    principal = getattr(request.state, "principal", None)
    timezone = principal.user.timezone if principal else "Asia/Ho_Chi_Minh"
    role = principal.user.role if principal else None
    base = {
        "principal": principal,
        "csrf_token": principal.csrf if principal else "",
        "lang": i18n.language(),
        "nav": [(n, label) for n, label in NAV if role and allowed(n, role)],
        "can": (lambda route: bool(role) and allowed(route, role)),
        "fmt_time": (lambda value: i18n.format_time(value, timezone)),
    }
    return templates.TemplateResponse(request, name, {**base, **(context or {})},
                                      status_code=status_code)
