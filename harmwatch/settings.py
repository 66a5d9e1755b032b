"""All of harmwatch's settings, in one place.

Values come from the environment (``HARMWATCH_*``, e.g. ``HARMWATCH_KAFKA_BOOTSTRAP``)
or from a YAML file named by ``HARMWATCH_CONFIG``; the environment wins. A broken value
fails at start-up with the field named (see :func:`load_settings`).
"""

from __future__ import annotations

import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent


class ConfigError(RuntimeError):
    """A setting is missing or malformed; the message names the field and the fix."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HARMWATCH_", extra="forbid")

    # Where run-time state lives (service data, logs, blobs, banks). Git-ignored.
    var_dir: Path = Field(default=REPO_ROOT / "var")

    # Kafka
    kafka_bootstrap: str = "127.0.0.1:9092"
    topic_raw: str = "posts.raw"
    topic_flagged: str = "posts.flagged"
    topic_dead: str = "posts.dead"
    topic_partitions: int = Field(default=6, ge=1)
    topic_replication: int = Field(default=1, ge=1)
    # Largest message (key + value, before compression) a harmwatch producer sends; Kafka's
    # own default limit. Raising it needs the topics' max.message.bytes raised as well.
    kafka_max_message_bytes: int = Field(default=1024 * 1024, ge=64 * 1024)

    # Elasticsearch
    es_url: str = "http://127.0.0.1:9200"
    es_username: str | None = None
    es_password: str | None = None
    es_index_prefix: str = "harmwatch"

    # Blob store
    blob_dir: Path | None = None  # defaults to var_dir/blobs
    blob_max_bytes: int = Field(default=50 * 1024 * 1024, ge=1)

    # Hash banks
    banks_dir: Path | None = None  # defaults to var_dir/banks

    # Analyzer
    recall_floor: float = Field(default=0.15, ge=0.0, le=1.0)
    # False runs the text rules without the transformer (scores are the rules' evidence):
    # for hosts without the model, and for pipeline tests that are not about the model.
    analyzer_text_model: bool = True
    # The trained text model (head, calibration, manifest). Its model.json also carries the
    # default queue threshold of each category, chosen on validation; admins override them.
    text_model_dir: Path = Field(default=REPO_ROOT / "models" / "text")

    # Crawling
    crawler_contact_url: str = "https://github.com/harmwatch/harmwatch"
    crawler_allow_hosts: list[str] = Field(default_factory=list)

    # Review UI
    ui_host: str = "127.0.0.1"
    ui_port: int = Field(default=8000, ge=1, le=65535)
    ui_secret_key: str | None = None  # generated into var/ on first start when unset
    ui_secure_cookies: bool = False
    ui_claim_minutes: int = Field(default=15, ge=1, le=24 * 60)  # how long a claim holds an item
    # The local counselling line shown, as plain text, beside 111 on urgent (self-harm path)
    # items: its number and name, e.g. "<number> — <service name>, <hours>".
    counselling_line: str | None = Field(default=None, max_length=300)

    # Evidence packs and evidence at rest (review_ui/evidence, docs/formats/evidence-pack.md)
    evidence_key: str | None = None  # AES-256-GCM key, base64; generated into var/ when unset
    evidence_signing_key: Path | None = None  # Ed25519 PEM; generated into var/evidence/ when unset
    evidence_tsa_url: str | None = None  # RFC 3161 authority; unset: only the request is stored
    evidence_organisation: str = "harmwatch"

    @property
    def resolved_blob_dir(self) -> Path:
        return self.blob_dir or self.var_dir / "blobs"

    @property
    def resolved_banks_dir(self) -> Path:
        return self.banks_dir or self.var_dir / "banks"

    def index_name(self, kind: str) -> str:
        """The alias an index is reached by, e.g. ``harmwatch-items``."""
        return f"{self.es_index_prefix}-{kind}"


def _yaml_values(path: str | None) -> dict[str, Any]:
    if not path:
        return {}
    file = Path(path)
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise ConfigError(f"HARMWATCH_CONFIG={path}: cannot read the file ({exc}).") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc}).") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of setting names to values.")
    env_names = {k.lower().removeprefix("harmwatch_") for k in os.environ if k.upper().startswith("HARMWATCH_")}
    return {k: v for k, v in data.items() if k not in env_names}


def load_settings(**overrides: Any) -> Settings:
    """Build settings from file, environment and overrides, naming any bad field."""
    values = _yaml_values(os.environ.get("HARMWATCH_CONFIG"))
    values.update(overrides)
    try:
        return Settings(**values)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '?'}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(
            f"Invalid harmwatch settings — {problems}. "
            "Fix the HARMWATCH_<FIELD> environment variable or the HARMWATCH_CONFIG file."
        ) from exc


def settings_environment(settings: Settings) -> dict[str, str]:
    """``HARMWATCH_*`` variables that give a child process exactly these settings.

    Stages are started as their own processes (the demo, tests, "run now" in the admin
    pages); the environment is how a process is configured in production too.
    """
    env = {}
    for name, value in settings.model_dump(mode="json").items():
        if value is None:
            continue
        text = value if isinstance(value, str) else json.dumps(value)
        env[f"HARMWATCH_{name.upper()}"] = text
    return env


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, loaded once."""
    return load_settings()
