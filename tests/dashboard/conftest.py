"""Dashboard tests: an app with RS_API_TOKEN set, and reading what a page shows."""

from __future__ import annotations

import re

import pytest

from tests.conftest import build_app

TOKEN = "dashboard-test-token"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def token_app(store_overrides):
    app = build_app(store_overrides)
    app.config["RS_API_TOKEN"] = TOKEN  # as RS_API_TOKEN=... would (read on every request)
    with app.app_context():
        yield app


def csrf_of(page: str) -> str:
    """The CSRF token of the first form on `page`."""
    return CSRF.search(page).group(1)


def sign_in(client, token: str = TOKEN, next_page: str = "/dashboard/"):
    """POST the sign-in form as a browser would (with the form's CSRF token)."""
    form = client.get("/dashboard/sign-in").get_data(as_text=True)
    return client.post(
        "/dashboard/sign-in",
        data={"token": token, "next": next_page, "csrf_token": csrf_of(form)},
    )
