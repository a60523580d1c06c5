"""The recommender service: `create_app()` builds the Flask app (API, CLI, database, Celery)."""

from __future__ import annotations

import logging

from flask import Flask

from recommender.config import load_config


def create_app(env: str | None = None, **overrides) -> Flask:
    """Build the app for FLASK_ENV (or `env`); `overrides` replace any setting (tests use them)."""
    from recommender.api import init_api
    from recommender.celery_app import init_celery
    from recommender.commands import register_commands
    from recommender.extensions import connect_db
    from recommender.monitoring import init_sentry

    config = load_config(env, **overrides)
    app = Flask(__name__)
    app.config.update(config)
    init_sentry(app.config)  # no-op without SENTRY_DSN
    # Libraries log at INFO; our own code at DEBUG in development.
    own_level = logging.DEBUG if app.config["DEBUG"] else logging.INFO
    logging.getLogger("recommender").setLevel(own_level)
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    connect_db(app.config)
    init_celery(app)
    init_api(app)
    register_commands(app)
    return app
