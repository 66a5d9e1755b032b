"""The pack's human-readable summary (``summary.html``) in Vietnamese or English.

A police officer opens this first, on any machine, possibly offline: one self-contained
HTML file, no script, no remote resources (a CSP meta tag forbids them), every crawled
value escaped. It describes the pack; the manifest and signature are what prove it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from review_ui.bidi import crawled

LANGUAGES = ("vi", "en")

STRINGS: dict[str, dict[str, str]] = {
    "en": {
        "title": "Evidence pack summary", "case": "Case", "reference": "Reference number",
        "agency": "Requesting agency", "officer": "Officer", "exported_by": "Exported by",
        "organisation": "Exporting organisation", "exported_at": "Exported at (UTC)",
        "kind": "Pack type", "full": "Full (media and page snapshots included)",
        "metadata-only": "Hashes and metadata only (no media, no snapshots)",
        "tool": "Tool", "items": "Items", "files": "Files in pack", "item": "Item",
        "url": "URL", "captured": "Captured (UTC)", "status": "Review status",
        "category": "Category", "media": "Media files", "matches": "Hash-bank matches",
        "viewed": "Viewed by a person", "yes": "yes", "no": "no",
        "verify": "To check this pack has not been altered, run: harmwatch evidence verify "
                  "PACK.zip --public-key KEY.pem — or see manifest.json, manifest.sig and "
                  "docs/formats/evidence-pack.md.",
        "fingerprint": "Signing key fingerprint (SHA-256)", "missing": "Items not found",
        "withheld": "Items withheld: no longer confirmed or escalated (not in this pack)",
    },
    "vi": {
        "title": "Tóm tắt gói chứng cứ", "case": "Vụ việc", "reference": "Số hiệu",
        "agency": "Cơ quan yêu cầu", "officer": "Cán bộ phụ trách", "exported_by": "Người xuất",
        "organisation": "Tổ chức xuất", "exported_at": "Thời điểm xuất (UTC)",
        "kind": "Loại gói", "full": "Đầy đủ (gồm tệp phương tiện và bản lưu trang)",
        "metadata-only": "Chỉ mã băm và siêu dữ liệu (không có tệp phương tiện, bản lưu trang)",
        "tool": "Công cụ", "items": "Mục", "files": "Số tệp trong gói", "item": "Mục",
        "url": "URL", "captured": "Thu thập lúc (UTC)", "status": "Trạng thái xem xét",
        "category": "Loại", "media": "Tệp phương tiện", "matches": "Trùng khớp kho mã băm",
        "viewed": "Đã có người xem", "yes": "có", "no": "không",
        "verify": "Để kiểm tra gói không bị thay đổi, chạy: harmwatch evidence verify "
                  "PACK.zip --public-key KEY.pem — hoặc xem manifest.json, manifest.sig và "
                  "docs/formats/evidence-pack.md.",
        "fingerprint": "Dấu vân tay khoá ký (SHA-256)", "missing": "Mục không tìm thấy",
        "withheld": "Mục bị giữ lại: không còn được xác nhận hay chuyển tiếp (không có trong gói)",
    },
}

_env = Environment(
    loader=FileSystemLoader(Path(__file__).resolve().parent / "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True,
)
_env.filters["crawled"] = crawled


def render_summary(language: str, context: dict[str, Any]) -> bytes:
    """The summary page's UTF-8 bytes; unknown languages fall back to English."""
    strings = STRINGS.get(language, STRINGS["en"])
    html = _env.get_template("pack_summary.html").render(
        t=strings, lang=language if language in STRINGS else "en", **context)
    return html.encode("utf-8")
