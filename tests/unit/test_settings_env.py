"""config.get_settings: the function's settings from its environment, read once."""

from __future__ import annotations

import dataclasses

import pytest

from dora_insights.config import Settings, get_settings, reset_settings


@pytest.fixture(autouse=True)
def _fresh() -> object:
    reset_settings()
    yield
    reset_settings()


def test_reads_the_environment_template_yaml_sets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TABLE_NAME", "dora-prod")
    monkeypatch.setenv("RETRY_QUEUE_URL", "https://sqs.example/retry")
    monkeypatch.setenv("EVENT_BUS_NAME", "")
    monkeypatch.setenv("ALERT_ALLOW_LOOPBACK_HTTP", "TRUE")
    monkeypatch.delenv("STAGE", raising=False)
    settings = get_settings()
    assert settings.table_name == "dora-prod"
    assert settings.retry_queue_url == "https://sqs.example/retry"
    assert settings.event_bus_name is None  # set but empty reads as unset
    assert settings.alert_allow_loopback_http is True
    assert settings.stage == "dev"
    assert get_settings() is settings  # read once per function instance


@pytest.mark.parametrize("name", ["", "ab"])
def test_a_missing_table_name_fails_naming_the_variable(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    monkeypatch.setenv("TABLE_NAME", name)
    with pytest.raises(ValueError, match="TABLE_NAME"):
        get_settings()


def test_settings_cannot_be_changed_after_they_are_read() -> None:
    settings = Settings(table_name="dora")
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.table_name = "other"  # type: ignore[misc]
