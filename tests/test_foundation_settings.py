"""Settings: a broken value names its field and says how to fix it."""

from __future__ import annotations

import pytest

from harmwatch.settings import ConfigError, load_settings


def test_bad_environment_value_names_the_field(monkeypatch):
    monkeypatch.setenv("HARMWATCH_UI_PORT", "not-a-port")
    with pytest.raises(ConfigError, match="ui_port"):
        load_settings()


def test_config_file_is_read_and_environment_wins(monkeypatch, tmp_path):
    config = tmp_path / "harmwatch.yaml"
    config.write_text("ui_port: 8123\nrecall_floor: 0.3\n")
    monkeypatch.setenv("HARMWATCH_CONFIG", str(config))
    monkeypatch.setenv("HARMWATCH_RECALL_FLOOR", "0.2")
    settings = load_settings()
    assert settings.ui_port == 8123
    assert settings.recall_floor == 0.2


def test_unknown_key_in_config_file_is_refused(monkeypatch, tmp_path):
    config = tmp_path / "harmwatch.yaml"
    config.write_text("ui_prot: 8123\n")
    monkeypatch.setenv("HARMWATCH_CONFIG", str(config))
    with pytest.raises(ConfigError, match="ui_prot"):
        load_settings()


def test_settings_travel_to_child_processes_through_the_environment(monkeypatch, tmp_path):
    from harmwatch.settings import settings_environment

    original = load_settings(var_dir=tmp_path, kafka_bootstrap="127.0.0.1:39092",
                             crawler_allow_hosts=["127.0.0.1"], ui_secure_cookies=True)
    for name, value in settings_environment(original).items():
        monkeypatch.setenv(name, value)
    assert load_settings() == original


def test_the_counselling_line_and_text_model_dir_come_from_the_environment(monkeypatch,
                                                                             tmp_path):
    from harmwatch.settings import REPO_ROOT

    for name in ("HARMWATCH_CONFIG", "HARMWATCH_COUNSELLING_LINE", "HARMWATCH_TEXT_MODEL_DIR"):
        monkeypatch.delenv(name, raising=False)
    defaults = load_settings()
    assert defaults.counselling_line is None
    assert defaults.text_model_dir == REPO_ROOT / "models" / "text"
    monkeypatch.setenv("HARMWATCH_COUNSELLING_LINE", "0000 000 000 (tư vấn)")
    monkeypatch.setenv("HARMWATCH_TEXT_MODEL_DIR", str(tmp_path))
    settings = load_settings()
    assert settings.counselling_line == "0000 000 000 (tư vấn)"
    assert settings.text_model_dir == tmp_path
