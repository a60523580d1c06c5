"""Synthetic browsing sessions: recommendations shown and the journeys that followed."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from recommender.models.marketplace import RECOMMENDABLE_STATUSES
from recommender.schemas.user_action import validate_user_action
from recommender.synthetic import generate_marketplace, generate_sessions

SESSIONS = 400


@pytest.fixture(scope="module")
def dump() -> dict:
    return generate_marketplace(users=150, services=80, seed=5)


@pytest.fixture(scope="module")
def sessions(dump) -> tuple[list[dict], list[dict]]:
    return generate_sessions(dump, sessions=SESSIONS, seed=5)


def test_same_seed_same_sessions_other_seed_other(dump, sessions):
    assert generate_sessions(dump, sessions=SESSIONS, seed=5) == sessions
    assert generate_sessions(dump, sessions=SESSIONS, seed=6)[0] != sessions[0]


def test_recommendations_show_k_recommendable_candidates(dump, sessions):
    recommendations, _ = sessions
    allowed = {s["id"] for s in dump["services"] if s["status"] in RECOMMENDABLE_STATUSES}
    orders = {u["id"]: set(u["accessed_services"]) for u in dump["users"]}
    assert len(recommendations) > 0.9 * SESSIONS
    for rec in recommendations:
        assert len(rec["services"]) == {"v1": 3, "v2": 2}[rec["panel_id"]]
        assert len(set(rec["services"])) == len(rec["services"])
        assert set(rec["services"]) <= set(rec["candidates"]) <= allowed
        assert not set(rec["services"]) & orders.get(rec["user"], set())
        assert rec["client_id"] == "marketplace" and rec["page_id"] == "/services"
        uuid.UUID(rec["unique_id"]), uuid.UUID(rec["visit_id"])
        assert rec["timestamp"].tzinfo is None
    assert {rec["user"] is None for rec in recommendations} == {True, False}  # anonymous too
    assert any(rec["search_data"] for rec in recommendations)
    assert any(not rec["search_data"] for rec in recommendations)


def test_actions_are_valid_user_action_payloads(sessions):
    _, actions = sessions
    assert actions
    for payload in actions:
        checked = validate_user_action(payload)
        assert checked.client_id == "marketplace"
        assert checked.source.root.type == "recommendation_panel"
        assert checked.source.root.resource_type == "service"


def test_journeys_are_linked_by_visit_ids(sessions):
    recommendations, actions = sessions
    shown = {rec["visit_id"]: rec for rec in recommendations}
    reached = {}  # target visit id -> the action that reached it
    for action in actions:  # time order: a parent comes before its children
        source, root = action["source"], action["source"]["root"]
        if source["page_id"] == "/services":  # a click on the panel
            rec = shown[source["visit_id"]]
            assert root["resource_id"] in rec["services"]
            assert root["panel_id"] == rec["panel_id"]
            assert action["target"]["page_id"].startswith("/services/")
        else:
            parent = reached[source["visit_id"]]
            assert parent["target"]["page_id"] == source["page_id"]
            assert parent["source"]["root"] == root
            assert parent["timestamp"] < action["timestamp"]
        reached[action["target"]["visit_id"]] = action
    follow_ups = [a for a in actions if a["source"]["page_id"] != "/services"]
    assert len(follow_ups) > len(actions) / 3


def test_some_journeys_end_in_an_order_from_the_summary(sessions):
    _, actions = sessions
    orders = [a for a in actions if a["action"]["order"]]
    assert orders
    assert all(a["source"]["page_id"].endswith("/summary") for a in orders)


def test_interesting_services_are_clicked_more(dump, sessions):
    """Visitors click shown services in their declared categories or domains more often
    (declared interests are only part of the hidden affinity that drives clicks)."""
    recommendations, actions = sessions
    services = {s["id"]: s for s in dump["services"]}
    users = {u["id"]: u for u in dump["users"]}
    clicked = {
        (a["source"]["visit_id"], a["source"]["root"]["resource_id"])
        for a in actions
        if a["source"]["page_id"] == "/services"
    }
    rates = {True: [0, 0], False: [0, 0]}
    for rec in recommendations:
        user = users.get(rec["user"])
        if user is None:
            continue
        for sid in rec["services"]:
            match = bool(
                set(services[sid]["categories"]) & set(user["categories"])
                or set(services[sid]["scientific_domains"]) & set(user["scientific_domains"])
            )
            rates[match][0] += (rec["visit_id"], sid) in clicked
            rates[match][1] += 1
    assert rates[True][0] / rates[True][1] > 1.5 * rates[False][0] / rates[False][1]


def test_sessions_span_a_month_from_start(dump):
    start = dt.datetime(2025, 3, 1, 12, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    recommendations, actions = generate_sessions(dump, sessions=50, seed=1, start=start)
    utc_start = dt.datetime(2025, 3, 1, 10)
    times = [r["timestamp"] for r in recommendations]
    assert times == sorted(times)
    assert utc_start <= times[0] and times[-1] <= utc_start + dt.timedelta(days=30)
    assert all(a["timestamp"] > "2025-03-01T10" for a in actions)


def test_users_keep_their_browser_id(sessions):
    recommendations, _ = sessions
    browsers: dict[int, set[str]] = {}
    for rec in recommendations:
        if rec["user"] is not None:
            browsers.setdefault(rec["user"], set()).add(rec["unique_id"])
    assert all(len(ids) == 1 for ids in browsers.values())
    assert any(len([r for r in recommendations if r["user"] == u]) > 1 for u in browsers)


def test_a_catalogue_without_categories_or_domains_still_gets_sessions():
    dump = generate_marketplace(users=30, services=12, seed=3)
    for entity in dump["users"] + dump["services"]:
        entity["categories"], entity["scientific_domains"] = [], []
    dump["categories"], dump["scientific_domains"] = [], []

    recommendations, actions = generate_sessions(dump, sessions=60, seed=3)

    assert recommendations and actions
    assert all(not r["search_data"].get("categories") for r in recommendations)
