"""The one settings object: typed values, defaults, and `.env.example` kept in step with it."""

from __future__ import annotations

from pathlib import Path

import pytest
from dotenv import dotenv_values
from pydantic import ValidationError

from recommender.settings import DATABUS_KEYS, Settings, flask_config, load_settings

EXAMPLE = Path(__file__).resolve().parents[1] / ".env.example"
# Read by compose, gunicorn, the Flask CLI and `make`, not by the app.
DEPLOYMENT_VARIABLES = {
    "FLASK_APP",
    "FLASK_RUN_HOST",
    "FLASK_RUN_PORT",
    "CELERY_LOG_LEVEL",
    "JUPYTER_RUN_HOST",
    "JUPYTER_RUN_PORT",
    "RABBIT_HOST",
    "RABBIT_CONSOLE_HOST",
    "WEB_CONCURRENCY",
    "PROMETHEUS_HOST",
    "GRAFANA_HOST",
    "GRAFANA_ADMIN_PASSWORD",
    "PIP_INDEX_URL",
    "PIP_EXTRA_INDEX_URL",
}


def example() -> dict[str, str | None]:
    return dotenv_values(EXAMPLE)


def test_the_example_lists_every_setting_and_only_known_variables():
    listed = set(example())
    assert listed >= set(Settings.model_fields), set(Settings.model_fields) - listed
    assert listed - set(Settings.model_fields) == DEPLOYMENT_VARIABLES


def test_the_example_values_are_the_defaults():
    given = {k: v for k, v in example().items() if k in Settings.model_fields and v}
    parsed = Settings.model_validate(given)
    for name, field in Settings.model_fields.items():
        assert getattr(parsed, name) == field.get_default(call_default_factory=True), name


def test_every_setting_says_what_it_is():
    for name, field in Settings.model_fields.items():
        assert field.description and len(field.description.split()) >= 2, name


def test_values_come_typed_from_the_environment(monkeypatch):
    monkeypatch.setenv("MODEL_VERSIONS_KEPT", "5")
    monkeypatch.setenv("RS_DATABUS_SSL", "off")
    monkeypatch.setenv("ENGINES", " Random , NCF ")
    monkeypatch.setenv("RS_API_TOKEN", "")  # empty: the default
    settings = load_settings("production")
    assert settings.MODEL_VERSIONS_KEPT == 5
    assert settings.RS_DATABUS_SSL is False
    assert settings.ENGINES == ("Random", "NCF")
    assert settings.RS_API_TOKEN is None


@pytest.mark.parametrize(
    ("name", "value"),
    [("MODEL_VERSIONS_KEPT", "0"), ("RS_DATABUS_PORT", "many"), ("FLASK_ENV", "staging")],
)
def test_a_bad_value_names_the_setting(monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError) as raised:
        load_settings()
    assert name in str(raised.value)


def test_the_testing_profile_reads_the_test_databus_variables(monkeypatch):
    monkeypatch.setenv("TEST_RS_DATABUS_PUBLISH_TOPIC", "/topic/mine")
    monkeypatch.setenv("RS_DATABUS_PUBLISH_TOPIC", "/topic/production")
    assert load_settings("testing").databus()["RS_DATABUS_PUBLISH_TOPIC"] == "/topic/mine"
    assert load_settings("production").databus()["RS_DATABUS_PUBLISH_TOPIC"] == "/topic/production"
    # An explicit override of an RS_DATABUS_ name wins in every profile.
    overridden = load_settings("testing", RS_DATABUS_PORT=1234)
    assert overridden.databus()["RS_DATABUS_PORT"] == 1234
    assert set(overridden.databus()) == set(DATABUS_KEYS)


def test_the_flask_config_carries_the_settings_and_the_store(monkeypatch):
    settings = load_settings("testing", MONGODB_HOST="mongomock", TRAINING_SEED=7)
    config = flask_config(settings, DB_NAME="elsewhere")
    assert config["TRAINING_SEED"] == 7 and config["TESTING"] is True
    assert config["MONGODB_URI"] == "mongomock://localhost/elsewhere"
    assert config["CELERY_TASK_ALWAYS_EAGER"] is True  # the in-process store needs it
    assert load_settings("testing").runs_dir is None
    assert load_settings("production").runs_dir == "runs"
    assert load_settings("production", TRAINING_RUNS_DIR="off").runs_dir is None
