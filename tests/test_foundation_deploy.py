"""The production deployment file is valid Compose (validated by the client, no engine)."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from harmwatch.settings import REPO_ROOT


def _compose_command() -> list[str]:
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0:
        return [docker, "compose"]
    if legacy := shutil.which("docker-compose"):
        return [legacy]
    pytest.fail("neither `docker compose` nor `docker-compose` is installed; run `make test-tools`")


def test_compose_file_validates_with_its_required_secrets():
    env = {**os.environ, "ELASTIC_PASSWORD": "example", "HARMWATCH_UI_SECRET_KEY": "example"}
    result = subprocess.run(
        [*_compose_command(), "-f", str(REPO_ROOT / "docker-compose.yml"), "config", "-q"],
        capture_output=True, text=True, env=env, cwd=REPO_ROOT,
    )
    assert result.returncode == 0, result.stderr


def test_compose_refuses_to_start_without_the_elastic_password():
    env = {k: v for k, v in os.environ.items() if k != "ELASTIC_PASSWORD"}
    env["HARMWATCH_UI_SECRET_KEY"] = "example"
    result = subprocess.run(
        [*_compose_command(), "-f", str(REPO_ROOT / "docker-compose.yml"), "config", "-q"],
        capture_output=True, text=True, env=env, cwd=REPO_ROOT,
    )
    assert result.returncode != 0
    assert "ELASTIC_PASSWORD" in result.stderr
