"""`create_app()`: the Flask app of every role (API, worker, CLI), wired from the settings."""

from __future__ import annotations

import logging

from flask import Flask

from recommender.api import init_api
from recommender.celery_app import celery, init_celery
from recommender.commands import register_commands
from recommender.dashboard import init_dashboard
from recommender.monitoring import init_sentry
from recommender.services.runtime import attach
from recommender.settings import load_config
from recommender.store import connect_db


def create_app(env: str | None = None, **overrides) -> Flask:
    """Build the app for FLASK_ENV (or `env`); `overrides` replace any setting (tests use
    them), and names that are not settings (e.g. CELERY_TASK_ALWAYS_EAGER) go to the config."""
    settings, config = load_config(env, **overrides)
    app = Flask("recommender")
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
    celery.loader.import_default_modules()  # the task modules: enqueued by name from services
    attach(app, settings)
    app.extensions["create_app"] = create_app  # `flask demo` builds its own app with it
    init_api(app)
    init_dashboard(app, settings)
    register_commands(app)
    return app
