"""Project VIC VICS 2.0 JSON for the media of a pack (format notes: docs/formats/vics.md).

VICS is the OData-style JSON that Griffeye Analyze, Autopsy's Project VIC module and
other forensic tools import: one Case in ``value`` holding ``Media[]`` entries keyed by
MD5 and SHA-1. Fields VICS 2.0 has no slot for (SHA-256, PDQ, the source URL) go in
``Comments`` so nothing is lost on import, and the same values are in ``hashes.csv``.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

ODATA_CONTEXT = "http://github.com/VICSDATAMODEL/ProjectVic/DataModels/2.0.xml/US/$metadata#Cases"
SCHEMA_PATH = Path(__file__).resolve().parent / "schemas" / "vics-2.0.schema.json"

# VICS categories. Only a human decision of sexual exploitation, or a bank entry that
# says so, is put in category 1; everything else is left for the investigator (0).
UNCATEGORIZED, CHILD_ABUSE_MATERIAL = 0, 1
_CAM_BANK_CATEGORIES = {"A1", "A2", "B1", "B2", "1"}


def vics_category(item: dict[str, Any], media_sha256: str | None) -> int:
    decision = item.get("decision") or {}
    if item.get("status") == "confirmed" and decision.get("category") == "sexual_exploitation":
        return CHILD_ABUSE_MATERIAL
    for match in item.get("matches") or []:
        if match.get("media_sha256") == media_sha256 and str(match.get("category")) in \
                _CAM_BANK_CATEGORIES:
            return CHILD_ABUSE_MATERIAL
    return UNCATEGORIZED


def media_entry(media_id: int, item: dict[str, Any], file: dict[str, Any],
                date_updated: str) -> dict[str, Any]:
    """One ``Media`` record; ``file`` is the pack's description of the media file."""
    comments = [f"SHA256:{file['sha256']}", f"harmwatch item {item['item_id']}"]
    if file.get("pdq"):
        comments.insert(1, f"PDQ:{file['pdq']}")
    if file.get("source_url"):
        comments.append(f"URL:{file['source_url']}")
    category = vics_category(item, file["sha256"])
    name = (file.get("path") or file["sha256"]).rsplit("/", 1)[-1]
    return {
        "MediaID": media_id,
        "Category": category,
        "MD5": file["md5"].upper(),
        "SHA1": file["sha1"].upper(),
        "MediaSize": file["size"],
        "MimeType": file.get("content_type") or "application/octet-stream",
        "DateUpdated": date_updated,
        "IsPrecategorized": category != UNCATEGORIZED,
        "IsDistributed": False,
        "VictimIdentified": False,
        "OffenderIdentified": False,
        "Series": "",
        "Name": name,
        "RelativeFilePath": file.get("path") or "",
        "MediaFiles": [{"FileName": name, "FilePath": file.get("path") or "",
                        "MD5": file["md5"].upper(), "SHA1": file["sha1"].upper(),
                        "FileSize": file["size"], "Unallocated": False}],
        "Comments": "; ".join(comments),
        "Tags": "harmwatch",
    }


def case_guid(case_id: str) -> str:
    """VICS tools expect a GUID for CaseID: a stable one derived from the case id."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"harmwatch:case:{case_id}"))


def document(case: dict[str, Any], media: list[dict[str, Any]], tool: dict[str, str],
             organisation: str) -> dict[str, Any]:
    """The whole VICS file: one Case with every media entry."""
    return {
        "@odata.context": ODATA_CONTEXT,
        "value": [{
            "CaseID": case_guid(case["case_id"]),
            "CaseNumber": case.get("reference") or case["case_id"],
            "ContactName": case.get("officer") or "",
            "ContactOrganization": organisation,
            "SourceApplicationName": tool["name"],
            "SourceApplicationVersion": tool["version"],
            "Media": media,
        }],
    }


def schema() -> dict[str, Any]:
    """The JSON Schema of what this module emits (the fields VICS 2.0 importers require)."""
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
