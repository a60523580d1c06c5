"""The operations dashboard at `/dashboard`: what the service is doing, in a browser.

Server-rendered pages (a Flask blueprint, Jinja templates, one CSS file) with charts drawn as
SVG on the server: no JavaScript, nothing fetched from another site. One module per page in
`pages/` (the navigation follows their import order); the data each shows comes from
`recommender/services/dashboard/`. When RS_API_TOKEN is set every page asks for it first
(`auth.py`); the only POSTs are forms carrying a CSRF token (`forms.py`).
"""

from __future__ import annotations

from flask import Flask

from recommender.dashboard import auth, pages
from recommender.dashboard.blueprint import blueprint
from recommender.settings import Settings

__all__ = ["init_dashboard", "pages"]


def init_dashboard(app: Flask, settings: Settings) -> None:
    auth.configure_sessions(app, settings)
    app.register_blueprint(blueprint)
