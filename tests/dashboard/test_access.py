"""Who sees the dashboard: open without RS_API_TOKEN; with it, nothing but the sign-in form
until the token is given; every form POST carries a CSRF token; the API's own token check is
unchanged."""

from __future__ import annotations

from recommender.dashboard.auth import session_key
from recommender.models.activity import Recommendation
from recommender.models.ops import utcnow
from recommender.settings import Settings
from tests.dashboard.conftest import TOKEN, csrf_of, sign_in

PAGES = ("/dashboard/", "/dashboard/training", "/dashboard/recommendations")
AAI_UID = "0123456789abcdef@egi.eu"


def test_without_a_token_every_page_is_open(client):
    for page in PAGES:
        assert client.get(page).status_code == 200
    assert client.get("/dashboard/sign-in").status_code == 302  # nothing to sign in to


def test_with_a_token_every_page_asks_for_it_first_and_shows_no_id(token_app):
    visit = "8c5a2d6e-0000-4000-8000-000000000001"
    stored = dict(user=7, aai_uid=AAI_UID, visit_id=visit, unique_id="u", services=[1])
    Recommendation(**stored, timestamp=utcnow()).save()
    client = token_app.test_client()
    wanted = f"/dashboard/recommendations?kind=aai_uid&q={AAI_UID}"
    for page in (*PAGES, wanted, "/dashboard/training/0123456789abcdef01234567"):
        answer = client.get(page)
        assert answer.status_code == 302
        assert answer.location.startswith("/dashboard/sign-in?next=")
    form = client.get(client.get(wanted).location).get_data(as_text=True)
    assert visit not in form and f"7 · {AAI_UID}" not in form  # nothing read from the store
    assert "Overview" not in form  # no navigation either

    signed_in = sign_in(client, next_page=wanted)
    assert (signed_in.status_code, signed_in.location) == (302, wanted)
    page = client.get(wanted).get_data(as_text=True)
    assert visit in page and f"7 · {AAI_UID}" in page
    for page in PAGES:
        assert client.get(page).status_code == 200


def test_a_wrong_token_is_refused(token_app):
    client = token_app.test_client()
    answer = sign_in(client, token="guess")
    assert answer.status_code == 401
    assert "Wrong token." in answer.get_data(as_text=True)
    assert client.get("/dashboard/").status_code == 302


def test_sign_in_goes_back_only_to_a_dashboard_page(token_app):
    client = token_app.test_client()
    for elsewhere in ("https://example.org/", "//example.org/dashboard/", "/swagger.json"):
        assert sign_in(client, next_page=elsewhere).location == "/dashboard/"


def test_the_session_cookie_is_http_only_same_site_and_for_the_dashboard_only(token_app):
    client = token_app.test_client()
    cookie = sign_in(client).headers["Set-Cookie"]
    assert cookie.startswith("recommender_dashboard=")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/dashboard" in cookie
    assert "Expires=" in cookie  # 12 hours, not forever


def test_every_post_needs_the_forms_csrf_token(token_app):
    client = token_app.test_client()
    client.get("/dashboard/sign-in")  # the session has a CSRF token
    for token in (None, "forged"):
        data = {"token": TOKEN} | ({"csrf_token": token} if token else {})
        answer = client.post("/dashboard/sign-in", data=data)
        assert answer.status_code == 400
        assert "reload the page" in answer.get_data(as_text=True)
    assert client.get("/dashboard/").status_code == 302  # not signed in by those

    sign_in(client)
    page = client.get("/dashboard/").get_data(as_text=True)
    assert client.post("/dashboard/sign-out").status_code == 400  # a cross-site form
    assert client.get("/dashboard/").status_code == 200  # still signed in
    signed_out = client.post("/dashboard/sign-out", data={"csrf_token": csrf_of(page)})
    assert (signed_out.status_code, signed_out.location) == (302, "/dashboard/sign-in")
    assert client.get("/dashboard/").status_code == 302


def test_a_token_seen_before_signing_in_is_not_accepted_after(token_app):
    client = token_app.test_client()
    before = csrf_of(client.get("/dashboard/sign-in").get_data(as_text=True))
    sign_in(client)
    assert client.post("/dashboard/sign-out", data={"csrf_token": before}).status_code == 400


def test_the_session_key_follows_the_token_and_the_secret():
    def key(**settings) -> bytes:
        return session_key(Settings(**settings))

    assert key(RS_API_TOKEN="a") == key(RS_API_TOKEN="a")  # every process signs alike
    assert key(RS_API_TOKEN="a") != key(RS_API_TOKEN="b")  # a new token signs everyone out
    with_secret = key(RS_API_TOKEN="a", DASHBOARD_SECRET_KEY="s")
    assert with_secret not in (
        key(RS_API_TOKEN="a"),
        key(RS_API_TOKEN="a", DASHBOARD_SECRET_KEY="t"),
    )
    assert key(DASHBOARD_SECRET_KEY="s") == key(DASHBOARD_SECRET_KEY="s")
    assert key() != key()  # neither: random per process


def test_the_api_still_wants_its_bearer_token(token_app):
    client = token_app.test_client()
    assert client.post("/recommendations", json={}).status_code == 401


def test_pages_are_not_cached_and_allow_no_script(client):
    answer = client.get("/dashboard/")
    assert answer.headers["Cache-Control"] == "no-store"
    policy = answer.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "script-src" not in policy
    assert "<script" not in answer.get_data(as_text=True)
    assert client.get("/dashboard/static/dashboard.css").status_code == 200
