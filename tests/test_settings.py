"""The one settings object: every variable read once, legacy names honoured, bad values named, no secret echoed."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

import expstream
from expstream.config import Settings, env_name, load_settings
from expstream.exceptions import ConfigurationError

ALL = [
    "EXPSTREAM_PROJECT",
    "NEPTUNE_PROJECT",
    "NEPTUNE_BACKEND",
    "NEPTUNE_API_TOKEN",
    "NEPTUNE_NOTEBOOK_ID",
    "NEPTUNE_NOTEBOOK_PATH",
    "EXPSTREAM_RUN_ID",
    "EXPSTREAM_KAFKA",
    "EXPSTREAM_CLICKHOUSE",
    "EXPSTREAM_S3",
]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ALL:
        monkeypatch.delenv(name, raising=False)


def test_legacy_variables_are_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEPTUNE_PROJECT", "legacy/project")
    monkeypatch.setenv("NEPTUNE_BACKEND", "offline")
    monkeypatch.setenv("NEPTUNE_API_TOKEN", "token-value")
    monkeypatch.setenv("NEPTUNE_NOTEBOOK_ID", "nb-1")
    monkeypatch.setenv("NEPTUNE_NOTEBOOK_PATH", "work/train.ipynb")
    monkeypatch.setenv("EXPSTREAM_RUN_ID", "job-42")
    settings = load_settings()
    assert settings.project == "legacy/project"
    assert settings.backend == "offline"
    assert settings.api_token is not None and settings.api_token.get_secret_value() == "token-value"
    assert "token-value" not in repr(settings)
    assert (settings.notebook_id, settings.notebook_path, settings.run_id) == ("nb-1", "work/train.ipynb", "job-42")


def test_expstream_name_wins_over_the_legacy_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEPTUNE_PROJECT", "legacy/project")
    monkeypatch.setenv("EXPSTREAM_PROJECT", "new/project")
    assert load_settings().project == "new/project"
    assert load_settings(project="given/project").project == "given/project"


def test_unrelated_variables_are_not_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROJECT", "not/ours")
    monkeypatch.setenv("BACKEND", "offline")
    settings = load_settings()
    assert settings.project is None and settings.backend is None


def test_every_setting_names_its_variable() -> None:
    names = {field: env_name(field) for field in Settings.model_fields}
    assert names["home"] == "EXPSTREAM_HOME"
    assert names["project"] == "NEPTUNE_PROJECT"  # the legacy name, EXPSTREAM_PROJECT is its first choice
    assert names["notebook_id"] == "NEPTUNE_NOTEBOOK_ID"
    assert all(name.startswith(("EXPSTREAM_", "NEPTUNE_")) for name in names.values())


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("EXPSTREAM_CLICKHOUSE", "clickhouse://user:sekrit-pw@host:notaport/db"),
        ("EXPSTREAM_CLICKHOUSE", "http://user:sekrit-pw@host:9000/db"),
        ("EXPSTREAM_S3", "ftp://key:sekrit-pw@host:9000/bucket"),
        ("EXPSTREAM_S3", "https://key:sekrit-pw@host:9000/"),
    ],
)
def test_a_bad_service_url_fails_at_load_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigurationError) as caught:
        load_settings()
    message = str(caught.value)
    assert variable in message and "expected" in message
    assert "sekrit-pw" not in message and "sekrit-pw" not in repr(caught.value)


def test_a_bad_number_names_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXPSTREAM_FLUSH_INTERVAL", "-1")
    with pytest.raises(ConfigurationError, match="EXPSTREAM_FLUSH_INTERVAL"):
        load_settings()


def test_settings_are_frozen() -> None:
    settings = load_settings()
    with pytest.raises(ValidationError):
        settings.run_id = "changed"  # type: ignore[misc]
    assert hash(settings) == hash(load_settings())


def test_an_unknown_legacy_backend_is_refused(monkeypatch: pytest.MonkeyPatch, home: object) -> None:
    monkeypatch.setenv("NEPTUNE_BACKEND", "hosted-somewhere")
    with pytest.raises(expstream.exceptions.InvalidNeptuneBackend):
        expstream.init("acme/sandbox")
