"""Every setting of the service, typed, with its default and a one-line description.

Values come from the environment, then `.env` in the working directory (which never overrides
the environment); empty values mean "use the default". `Settings` is built once per app
(`load_settings`) and handed to whoever needs it: engines and pipelines receive it explicitly.
`.env.example` lists every field with its default (a test keeps the two in step).
"""

from __future__ import annotations

import os
import uuid
from typing import Annotated, Any, Literal

from dotenv import load_dotenv
from pydantic import AliasChoices, BeforeValidator, Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

FlaskEnv = Literal["development", "testing", "production"]
DB_NAMES: dict[str, str] = {
    "development": "recommender_dev",
    "testing": "test",
    "production": "recommender",
}
# The databus settings that the testing profile reads with a TEST_ prefix (as the original did).
DATABUS_KEYS = (
    "RS_DATABUS_HOST",
    "RS_DATABUS_PORT",
    "RS_DATABUS_USERNAME",
    "RS_DATABUS_PASSWORD",
    "RS_DATABUS_PUBLISH_TOPIC",
    "RS_DATABUS_SUBSCRIPTION_TOPIC",
)
# Top-K engines first (the champion, each personalised engine, RL, the rule, the floor), then the
# ranking variants in the same order, then Popularity (anonymous visitors).
DEFAULT_ENGINES = (
    "Auto",
    "NCF",
    "Hybrid",
    "EASE",
    "iALS",
    "RL",
    "InterestRule",
    "Random",
    "AutoRanking",
    "NCFRanking",
    "HybridRanking",
    "EASERanking",
    "iALSRanking",
    "InterestRuleRanking",
    "RandomRanking",
    "Popularity",
)
FALSY = {"0", "no", "false", "off"}


def _names(value: Any) -> Any:
    """A comma-separated list of names (as the environment gives it) or a list."""
    if isinstance(value, str):
        return [name.strip() for name in value.split(",") if name.strip()]
    return value


def _flag(value: Any) -> Any:
    """The original's reading of a flag: anything but 0/no/false/off is on."""
    if isinstance(value, str):
        return value.strip().lower() not in FALSY
    return value


Flag = Annotated[bool, BeforeValidator(_flag)]
Names = Annotated[tuple[str, ...], NoDecode, BeforeValidator(_names)]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        case_sensitive=True,
        env_ignore_empty=True,  # `KEY=` in .env or the environment: the default
        extra="ignore",
        frozen=True,
        validate_default=True,
    )

    # --- Flask ---
    FLASK_ENV: FlaskEnv = Field("development", description="development | testing | production")

    # --- Stores ---
    MONGODB_HOST: str = Field(
        "127.0.0.1:27017",
        description='host:port of MongoDB, a mongodb:// URI, or "mongomock" (in-process store)',
    )
    REDIS_HOST: str = Field("127.0.0.1:6379", description="host:port of Redis (Celery queue)")

    # --- Engines, training and serving ---
    ENGINES: Names = Field(
        DEFAULT_ENGINES,
        description=(
            "Served engines, comma-separated, in fallback order (the first ready one answers)"
        ),
    )
    DEFAULT_RECOMMENDATION_ALG: str = Field(
        "Auto",
        description=(
            "Engine for logged-in users when the request names none (Auto: the champion);"
            " re-read on change"
        ),
    )
    TRAINING_DEVICE: str = Field("cpu", description="cpu | cuda (cuda only when a GPU exists)")
    TRAINING_SEED: int = Field(42, description="Seed of every random choice in training")
    MODEL_VERSIONS_KEPT: int = Field(3, ge=1, description="Model versions kept per model")
    MODEL_RELOAD_INTERVAL: float = Field(
        2.0, ge=0, description="Seconds between a serving process's checks for new models"
    )
    TRAINING_RUNS_DIR: str | None = Field(
        None, description="Where training reports go (default runs, none when testing); off: none"
    )
    RL_MIN_REAL_SARSES: int = Field(
        2500, ge=0, description="RL trains on synthetic sessions while fewer real SARS exist"
    )
    RL_SYNTHETIC_SESSIONS: int = Field(
        20000, ge=0, description="Synthetic sessions RL generates at most"
    )
    RL_EPOCHS: int = Field(
        8, ge=0, description="Actor-critic epochs per panel (the best on validation is kept)"
    )
    RL_MIN_LOGGED_FOR_OPE: int = Field(
        2000,
        ge=1,
        description="Held-out real requests with logged propensities for off-policy estimates "
        "(not the simulator) to decide RL's gate",
    )
    RL_MARGIN: float = Field(
        0.0,
        ge=0,
        description="Gate: the interval of RL's margin over every baseline must lie above this",
    )
    PROMOTION_MARGIN: float = Field(
        0.005,
        ge=0,
        description="Gate NDCG@10 a personalised engine needs above the popularity baseline's",
    )
    PROMOTION_MIN_USERS: int = Field(
        50, ge=1, description="Gate (held-out validation) users needed to promote an engine"
    )
    EVALUATION_MAX_USERS: int = Field(
        5000, ge=0, description="Users per tune, gate and test part in training; 0: all"
    )
    EVALUATION_FULL_USERS: int = Field(
        1000, ge=0, description="Users of the full-catalogue test metrics in training; 0: none"
    )
    EASE_MAX_SERVICES: int = Field(
        10000, ge=2, description="EASE models at most this many services (the most accessed)"
    )

    # --- API ---
    RS_API_TOKEN: str | None = Field(
        None,
        description=(
            'When set, every POST needs "Authorization: Bearer <token>" and the dashboard asks'
            " for it"
        ),
    )
    DASHBOARD_SECRET_KEY: str | None = Field(
        None,
        description=(
            "Signs the dashboard's session cookie with RS_API_TOKEN (default: the token alone;"
            " neither: a random key per process)"
        ),
    )
    MAX_CONTENT_LENGTH: int = Field(
        512 * 1024 * 1024, ge=1, description="Largest request body in bytes (413 past it)"
    )
    HEALTHY_USERS_THRESHOLD: int = Field(10, ge=0, description="/health wants this many users")
    HEALTHY_SERVICES_THRESHOLD: int = Field(
        10, ge=0, description="/health wants this many services"
    )

    UPDATE_LEASE_TTL: float = Field(
        60.0,
        gt=0,
        description=(
            "Seconds an update's lease outlives its last renewal (renewed every quarter of "
            "it): how soon the next update runs after a worker died mid-update"
        ),
    )
    UPDATE_MAX_REMOVED_SHARE: float = Field(
        0.5,
        ge=0,
        le=1,
        description=(
            "POST /update refuses (409) a dump removing more than this share of the live "
            "recommendable services or users, unless ?force=true"
        ),
    )

    # --- Databus (STOMP) ---
    RS_DATABUS_ENABLED: Flag = Field(
        True,
        description=(
            "Publish served Marketplace recommendations and check the broker in /health "
            "(off: 0/no/false/off; `flask demo` turns it off unless --subscribe)"
        ),
    )
    RS_DATABUS_PUBLISH_INTERVAL: float = Field(
        1.0, gt=0, description="Seconds between the worker's runs sending stored recommendations"
    )
    RS_DATABUS_HOST: str = Field("127.0.0.1", description="STOMP broker host")
    RS_DATABUS_PORT: int = Field(61613, ge=1, le=65535, description="STOMP broker port")
    RS_DATABUS_USERNAME: str = Field("admin", description="STOMP login")
    RS_DATABUS_PASSWORD: str = Field("admin", description="STOMP passcode")
    RS_DATABUS_SSL: Flag = Field(True, description="TLS to the broker (off: 0/no/false/off)")
    RS_DATABUS_PUBLISH_TOPIC: str = Field(
        "/topic/recommendations", description="Where served recommendations are published"
    )
    RS_DATABUS_SUBSCRIPTION_TOPIC: str = Field(
        "/topic/user_actions", description="Where `flask subscribe` reads user actions"
    )
    RS_DATABUS_SUBSCRIPTION_ID: str | None = Field(
        None, description="Subscription id (default: recommender-<random uuid>)"
    )
    RS_DATABUS_DURABLE: Flag = Field(
        True, description="`flask subscribe` keeps messages published while it is down"
    )
    TEST_RS_DATABUS_HOST: str = Field("127.0.0.1", description="RS_DATABUS_HOST when testing")
    TEST_RS_DATABUS_PORT: int = Field(61613, ge=1, le=65535, description="... when testing")
    TEST_RS_DATABUS_USERNAME: str = Field("admin", description="... when testing")
    TEST_RS_DATABUS_PASSWORD: str = Field("admin", description="... when testing")
    TEST_RS_DATABUS_PUBLISH_TOPIC: str = Field(
        "/topic/recommendations_test", description="... when testing"
    )
    TEST_RS_DATABUS_SUBSCRIPTION_TOPIC: str = Field(
        "/topic/user_actions_test", description="... when testing"
    )

    # --- Monitoring ---
    SENTRY_DSN: str | None = Field(None, description="Sentry is off without a DSN")
    SENTRY_ENVIRONMENT: str | None = Field(None, description="Default: FLASK_ENV's name")
    SENTRY_RELEASE: str | None = Field(
        None,
        validation_alias=AliasChoices("SENTRY_RELEASE", "GIT_COMMIT"),
        description="Default: GIT_COMMIT (set by the image build)",
    )
    SENTRY_TRACES_SAMPLE_RATE: float = Field(
        0.0, ge=0, le=1, description="Share of requests traced by Sentry"
    )

    @field_validator("ENGINES")
    @classmethod
    def _some_engine(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("name at least one engine")
        return value

    @property
    def testing(self) -> bool:
        return self.FLASK_ENV == "testing"

    @property
    def db_name(self) -> str:
        return DB_NAMES[self.FLASK_ENV]

    @property
    def runs_dir(self) -> str | None:
        """Where training reports go; None: nowhere."""
        if self.TRAINING_RUNS_DIR is None:
            return None if self.testing else "runs"
        off = self.TRAINING_RUNS_DIR.strip().lower() in {"", "off"}
        return None if off else self.TRAINING_RUNS_DIR

    def databus(self) -> dict[str, Any]:
        """The databus settings in effect (TEST_RS_DATABUS_* when testing), by RS_ name."""
        prefix = "TEST_" if self.testing else ""
        return {key: getattr(self, prefix + key) for key in DATABUS_KEYS}


def read_dotenv() -> None:
    """Load `.env` from the working directory into the environment; it never overrides."""
    load_dotenv(os.path.join(os.getcwd(), ".env"), override=False)


def is_mongomock(host: str) -> bool:
    return host == "mongomock" or host.startswith("mongomock://")


def mongodb_uri(host: str, db_name: str) -> str:
    if is_mongomock(host):
        return f"mongomock://localhost/{db_name}"
    if host.startswith(("mongodb://", "mongodb+srv://")):
        return host
    return f"mongodb://{host}/{db_name}"


def load_settings(env: str | None = None, **overrides: Any) -> Settings:
    """The settings for `env` (default: FLASK_ENV) from the environment and `.env`; `overrides`
    (by setting name; other names are ignored) win over both."""
    read_dotenv()
    given = {name: value for name, value in overrides.items() if name in Settings.model_fields}
    if env is not None:
        given["FLASK_ENV"] = env
    if (env or os.environ.get("FLASK_ENV")) == "testing":
        # The testing profile reads TEST_RS_DATABUS_*: an override of RS_DATABUS_* means those.
        given.update({f"TEST_{key}": given.pop(key) for key in DATABUS_KEYS if key in given})
    return Settings(**given)


def flask_config(settings: Settings, **extra: Any) -> dict[str, Any]:
    """The Flask config of `settings`: every setting, the databus values in effect and what
    Flask and flask-restx read. `extra` (names that are not settings, e.g. CELERY_*) is added."""
    testing = settings.testing
    config = settings.model_dump()
    config.update(settings.databus())
    config.update(
        ENV_NAME=settings.FLASK_ENV,
        DEBUG=settings.FLASK_ENV == "development",
        TESTING=testing,
        DB_NAME=settings.db_name,
        RS_DATABUS_SUBSCRIPTION_ID=settings.RS_DATABUS_SUBSCRIPTION_ID
        or f"recommender-{uuid.uuid4()}",
        SENTRY_ENVIRONMENT=settings.SENTRY_ENVIRONMENT or settings.FLASK_ENV,
        # None: eager exactly when the store is mongomock (it lives in this process only).
        CELERY_TASK_ALWAYS_EAGER=None,
        SWAGGER_UI_DOC_EXPANSION="list",
        RESTX_MASK_SWAGGER=False,
        RESTX_ERROR_404_HELP=False,
    )
    config.update(extra)
    config["DB_NAME"] = extra.get("DB_NAME", config["DB_NAME"])
    config["MONGODB_URI"] = mongodb_uri(config["MONGODB_HOST"], config["DB_NAME"])
    if config["CELERY_TASK_ALWAYS_EAGER"] is None:
        config["CELERY_TASK_ALWAYS_EAGER"] = is_mongomock(config["MONGODB_HOST"])
    return config


def load_config(env: str | None = None, **overrides: Any) -> tuple[Settings, dict[str, Any]]:
    """The settings (see `load_settings`) and the Flask config built from them; overrides that
    are not settings (e.g. CELERY_TASK_ALWAYS_EAGER, DB_NAME) go to the config only."""
    settings = load_settings(env, **overrides)
    extra = {name: value for name, value in overrides.items() if name not in Settings.model_fields}
    return settings, flask_config(settings, **extra)
