"""The recommender service. `create_app()` (recommender.app) builds the Flask app."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flask import Flask


def create_app(env: str | None = None, **overrides: Any) -> Flask:
    """See recommender.app.create_app (imported here only when called: importing a module of
    this package must not build the whole app's import graph)."""
    from recommender.app import create_app as create

    return create(env, **overrides)
