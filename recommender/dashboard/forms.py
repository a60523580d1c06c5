"""CSRF protection of every POST the dashboard takes (sign in, sign out, the pages' buttons).

A page's form carries a random token kept in the signed session cookie (`csrf_token()` in
templates; the `post_form` macro of `_forms.html` adds it); a POST whose token does not match
is refused with a 400 before its view runs. Another site can make a browser send the cookie,
but it cannot read the token.
"""

from __future__ import annotations

import hmac
import secrets

from flask import abort, request, session

from recommender.dashboard.blueprint import blueprint

FIELD = "csrf_token"


@blueprint.app_template_global()
def csrf_token() -> str:
    token = session.get(FIELD)
    if token is None:
        token = session[FIELD] = secrets.token_urlsafe(32)
    return token


def renew_csrf_token() -> None:
    """A new token (after signing in: a token seen before it is no longer accepted)."""
    session[FIELD] = secrets.token_urlsafe(32)


@blueprint.before_request
def check_csrf_token() -> None:
    if request.method != "POST":
        return
    expected = session.get(FIELD)
    sent = request.form.get(FIELD, "")
    if not expected or not hmac.compare_digest(sent.encode(), expected.encode()):
        abort(400, "The form has expired or did not come from this dashboard: reload the page.")
