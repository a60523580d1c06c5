"""Sentry error reporting, enabled only when SENTRY_DSN is set; never sends personal identifiers."""

from __future__ import annotations

import os
from typing import Any

from recommender.config import load_config

# Request and event fields that identify a person: dropped before anything leaves the process.
PERSONAL_KEYS = {"aai_uid", "user_id", "user", "unique_id"}


def scrub(value: Any) -> Any:
    """A copy of `value` with every personal identifier replaced by a marker."""
    if isinstance(value, dict):
        return {
            key: "[Filtered]" if key in PERSONAL_KEYS else scrub(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [scrub(item) for item in value]
    return value


def before_send(event: dict, _hint: dict) -> dict:
    event.pop("user", None)
    return scrub(event)


def init_sentry(with_celery: bool = False) -> bool:
    """Start Sentry with the Flask (and Celery) integrations; False when no DSN is configured."""
    config = load_config()
    if not config["SENTRY_DSN"]:
        return False
    import sentry_sdk
    from sentry_sdk.integrations.flask import FlaskIntegration

    integrations: list = [FlaskIntegration()]
    if with_celery:
        from sentry_sdk.integrations.celery import CeleryIntegration

        integrations.append(CeleryIntegration())
    sentry_sdk.init(
        dsn=config["SENTRY_DSN"],
        environment=config["SENTRY_ENVIRONMENT"],
        release=config["SENTRY_RELEASE"] or os.environ.get("GIT_COMMIT"),
        traces_sample_rate=config["SENTRY_TRACES_SAMPLE_RATE"],
        send_default_pii=False,
        before_send=before_send,
        integrations=integrations,
    )
    return True
