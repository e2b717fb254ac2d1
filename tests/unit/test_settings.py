"""The one settings model: safe defaults, frozen, unknown keys refused, secrets from files
and never shown."""

from __future__ import annotations

from pathlib import Path

import pydantic
import pytest

from pipeline.settings import Settings, SettingsError


def test_settings_defaults_are_safe(monkeypatch):
    for key in ("CLICKHOUSE_URL", "KAFKA_BOOTSTRAP_SERVERS"):
        monkeypatch.delenv(key, raising=False)
    s = Settings(_env_file=None)
    assert s.web_host == "127.0.0.1" and s.web_port == 6066
    assert s.embedded_clickhouse and s.clickhouse_dsn.startswith("chdb:///")


def test_settings_are_frozen_and_reject_unknown_keys():
    s = Settings(_env_file=None)
    with pytest.raises(pydantic.ValidationError):
        s.web_port = 1  # type: ignore[misc]
    with pytest.raises(pydantic.ValidationError):
        Settings(_env_file=None, no_such_setting=1)  # type: ignore[call-arg]


def test_well_known_env_names_and_secret_files(monkeypatch, tmp_path: Path):
    secret = tmp_path / "pw"
    secret.write_text("hunter2\n")
    monkeypatch.setenv("CLICKHOUSE_URL", "https://reader@ch.example:8443/mail")
    monkeypatch.setenv("SMTP_AUTH_CLICKHOUSE_PASSWORD_FILE", str(secret))
    s = Settings(_env_file=None)
    assert not s.embedded_clickhouse
    assert s.clickhouse_password is not None
    assert s.clickhouse_password.get_secret_value() == "hunter2"
    assert "hunter2" not in repr(s) and "hunter2" not in str(s.model_dump())


def test_bad_values_are_clear_errors():
    with pytest.raises(pydantic.ValidationError, match="CLICKHOUSE_URL must start"):
        Settings(_env_file=None, clickhouse_url="mysql://x")
    with pytest.raises(pydantic.ValidationError, match="unknown time zone"):
        Settings(_env_file=None, log_timezone="Mars/Olympus")


def test_a_settings_error_never_shows_the_secret(monkeypatch):
    monkeypatch.setenv("SMTP_AUTH_WEB_PASSWORD", "hunter2-secret")
    with pytest.raises(SettingsError) as raised:
        Settings.load()
    assert "web_user and web_password go together" in str(raised.value)
    assert "hunter2" not in str(raised.value) and "hunter2" not in repr(raised.value)
