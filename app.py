"""WSGI and Flask CLI entry point: exposes `app` built by `create_app()`."""

from recommender import create_app

app = create_app()
