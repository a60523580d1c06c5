"""Settings read from the environment (and `.env`) when the app is built, per FLASK_ENV."""

from __future__ import annotations

import os
import uuid
from collections.abc import Mapping

from dotenv import load_dotenv

FLASK_ENVS = ("development", "testing", "production")
DB_NAMES = {"development": "recommender_dev", "testing": "test", "production": "recommender"}
FALSY = {"0", "no", "false", "off", ""}


def read_dotenv() -> None:
    """Load `.env` from the working directory; it never overrides variables already set."""
    load_dotenv(os.path.join(os.getcwd(), ".env"), override=False)


def as_bool(value: str | None, default: bool) -> bool:
    if value is None or not value.strip():  # unset or blank: the default
        return default
    return value.strip().lower() not in FALSY


def flask_env(environ: Mapping[str, str] | None = None) -> str:
    environ = os.environ if environ is None else environ
    env = (environ.get("FLASK_ENV") or "development").strip().lower()
    if env not in FLASK_ENVS:
        raise ValueError(f"FLASK_ENV must be one of {', '.join(FLASK_ENVS)}; got {env!r}")
    return env


def is_mongomock(host: str) -> bool:
    return host == "mongomock" or host.startswith("mongomock://")


def mongodb_uri(host: str, db_name: str) -> str:
    if is_mongomock(host):
        return f"mongomock://localhost/{db_name}"
    if host.startswith(("mongodb://", "mongodb+srv://")):
        return host
    return f"mongodb://{host}/{db_name}"


def load_config(env: str | None = None, environ: Mapping[str, str] | None = None, **overrides):
    """The Flask config for `env` (FLASK_ENV by default), built from the environment now."""
    read_dotenv()
    e = os.environ if environ is None else environ
    env = env or flask_env(e)
    testing = env == "testing"
    # The testing profile reads the TEST_-prefixed databus variables, as the original did.
    bus = "TEST_RS_DATABUS_" if testing else "RS_DATABUS_"
    default_topics = (
        ("/topic/recommendations_test", "/topic/user_actions_test")
        if testing
        else ("/topic/recommendations", "/topic/user_actions")
    )
    config = {
        "ENV_NAME": env,
        "DEBUG": env == "development",
        "TESTING": testing,
        "DB_NAME": DB_NAMES[env],
        "MONGODB_HOST": e.get("MONGODB_HOST", "127.0.0.1:27017"),
        "REDIS_HOST": e.get("REDIS_HOST", "127.0.0.1:6379"),
        "TRAINING_DEVICE": e.get("TRAINING_DEVICE", "cpu"),
        "DEFAULT_RECOMMENDATION_ALG": e.get("DEFAULT_RECOMMENDATION_ALG", "NCF"),
        "RS_DATABUS_HOST": e.get(f"{bus}HOST") or "127.0.0.1",
        "RS_DATABUS_PORT": int(e.get(f"{bus}PORT", "61613")),
        "RS_DATABUS_USERNAME": e.get(f"{bus}USERNAME", "admin"),
        "RS_DATABUS_PASSWORD": e.get(f"{bus}PASSWORD", "admin"),
        "RS_DATABUS_SSL": as_bool(e.get("RS_DATABUS_SSL"), True),
        "RS_DATABUS_PUBLISH_TOPIC": e.get(f"{bus}PUBLISH_TOPIC", default_topics[0]),
        "RS_DATABUS_SUBSCRIPTION_TOPIC": e.get(f"{bus}SUBSCRIPTION_TOPIC", default_topics[1]),
        "RS_DATABUS_SUBSCRIPTION_ID": e.get("RS_DATABUS_SUBSCRIPTION_ID")
        or f"recommender-{uuid.uuid4()}",
        "RS_API_TOKEN": e.get("RS_API_TOKEN") or None,
        "MAX_CONTENT_LENGTH": int(e.get("MAX_CONTENT_LENGTH", str(512 * 1024 * 1024))),
        "HEALTHY_USERS_THRESHOLD": int(e.get("HEALTHY_USERS_THRESHOLD", "10")),
        "HEALTHY_SERVICES_THRESHOLD": int(e.get("HEALTHY_SERVICES_THRESHOLD", "10")),
        "MODEL_VERSIONS_KEPT": int(e.get("MODEL_VERSIONS_KEPT", "3")),
        # How often a serving process looks for a new model or catalogue version (seconds).
        "MODEL_RELOAD_INTERVAL": float(e.get("MODEL_RELOAD_INTERVAL", "2")),
        "TRAINING_SEED": int(e.get("TRAINING_SEED", "42")),
        # RL trains on synthetic sessions while fewer real SARS than this exist.
        "RL_MIN_REAL_SARSES": int(e.get("RL_MIN_REAL_SARSES", "2500")),
        "RL_SYNTHETIC_SESSIONS": int(e.get("RL_SYNTHETIC_SESSIONS", "20000")),
        "RL_EPOCHS": int(e.get("RL_EPOCHS", "8")),
        # Training reports (loss curves, TensorBoard logs); empty turns them off.
        "TRAINING_RUNS_DIR": e.get("TRAINING_RUNS_DIR", "" if testing else "runs"),
        "SENTRY_DSN": e.get("SENTRY_DSN") or None,
        "SENTRY_ENVIRONMENT": e.get("SENTRY_ENVIRONMENT") or env,
        "SENTRY_RELEASE": e.get("SENTRY_RELEASE") or None,
        "SENTRY_TRACES_SAMPLE_RATE": float(e.get("SENTRY_TRACES_SAMPLE_RATE", "0.0")),
        # None: eager exactly when the store is mongomock (it lives in this process only).
        "CELERY_TASK_ALWAYS_EAGER": None,
        "SWAGGER_UI_DOC_EXPANSION": "list",
        "RESTX_MASK_SWAGGER": False,
        "RESTX_ERROR_404_HELP": False,
    }
    config.update(overrides)
    config["MONGODB_URI"] = mongodb_uri(config["MONGODB_HOST"], config["DB_NAME"])
    if config["CELERY_TASK_ALWAYS_EAGER"] is None:
        config["CELERY_TASK_ALWAYS_EAGER"] = is_mongomock(config["MONGODB_HOST"])
    return config
