"""Signing in to the dashboard with RS_API_TOKEN.

Without a token configured the dashboard is open (as the API is). With one, every page but the
sign-in form needs a session that signed in with it: a cookie signed with a key derived from the
token (and DASHBOARD_SECRET_KEY), so changing either signs everyone out. The cookie is
HttpOnly, SameSite=Lax, limited to /dashboard and valid for 12 hours.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import os

from flask import Flask, current_app, redirect, request, session, url_for
from werkzeug.wrappers import Response

from recommender.dashboard.blueprint import blueprint, render
from recommender.dashboard.forms import renew_csrf_token
from recommender.settings import Settings

SIGNED_IN = "signed_in"
OPEN_ENDPOINTS = {f"{blueprint.name}.sign_in", f"{blueprint.name}.static"}


def session_key(settings: Settings) -> bytes:
    """The key that signs session cookies (see the module doc)."""
    secret, token = settings.DASHBOARD_SECRET_KEY, settings.RS_API_TOKEN
    if not secret and not token:
        return os.urandom(32)
    material = f"{secret or ''}\0{token or ''}".encode()
    return hmac.new(material, b"recommender dashboard session", hashlib.sha256).digest()


def configure_sessions(app: Flask, settings: Settings) -> None:
    app.config.update(
        SECRET_KEY=session_key(settings),
        SESSION_COOKIE_NAME="recommender_dashboard",
        SESSION_COOKIE_PATH=blueprint.url_prefix,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        PERMANENT_SESSION_LIFETIME=dt.timedelta(hours=12),
    )


def token() -> str | None:
    return current_app.config.get("RS_API_TOKEN") or None


def signed_in() -> bool:
    return token() is None or bool(session.get(SIGNED_IN))


@blueprint.before_request
def require_sign_in() -> Response | None:
    if signed_in() or request.endpoint in OPEN_ENDPOINTS:
        return None
    return redirect(url_for(f"{blueprint.name}.sign_in", next=request.full_path))


@blueprint.context_processor
def sign_in_state() -> dict:
    return {"token_required": token() is not None, "signed_in": signed_in()}


def _next_page() -> str:
    """Where to go after signing in: a dashboard path only (never another site)."""
    wanted = request.values.get("next", "")
    inside = wanted.startswith(f"{blueprint.url_prefix}/") and not wanted.startswith("//")
    return wanted if inside and "\\" not in wanted else url_for(f"{blueprint.name}.overview")


@blueprint.route("/sign-in", methods=["GET", "POST"])
def sign_in():
    if token() is None:
        return redirect(url_for(f"{blueprint.name}.overview"))
    if request.method == "GET":
        return render("sign_in.html", title="Sign in", next=_next_page())
    given = request.form.get("token", "")
    if not hmac.compare_digest(given.encode(), token().encode()):
        return render("sign_in.html", 401, title="Sign in", next=_next_page(), error="Wrong token.")
    session.clear()
    session[SIGNED_IN] = True
    session.permanent = True
    renew_csrf_token()
    return redirect(_next_page())


@blueprint.route("/sign-out", methods=["POST"])
def sign_out():
    session.clear()
    return redirect(
        url_for(f"{blueprint.name}.sign_in" if token() else f"{blueprint.name}.overview")
    )
