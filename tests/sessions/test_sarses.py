"""Stored traffic -> SARS: journeys posted through the API, rewards, terminal flags, incremental
and crash-safe regeneration, bulk reads."""

from __future__ import annotations

import datetime as dt

import mongomock
import pytest

from recommender.models.activity import Recommendation, UserAction
from recommender.models.marketplace import User
from recommender.models.sars import Sars
from recommender.sessions import regenerate, regenerate_sarses
from recommender.sessions.rewards import service_values
from recommender.store import get_db, leases
from tests.api.helpers import load, recommendable_ids
from tests.sessions.journey import Visitor

LIST = "/services"


@pytest.fixture
def catalogue(app) -> dict:
    return load()


@pytest.fixture
def user_id(catalogue) -> int:
    return catalogue["users"][1]["id"]


@pytest.fixture
def candidates(catalogue, user_id) -> list[int]:
    accessed = set(User.objects(id=user_id).first().accessed_services)
    return sorted(recommendable_ids(catalogue) - accessed)


def sarses() -> list[dict]:
    return list(Sars._get_collection().find({}))


def by_recommendation(visit_id: str) -> dict:
    rec = Recommendation._get_collection().find_one({"visit_id": visit_id})
    return Sars._get_collection().find_one({"source_recommendation": rec["_id"]})


def page(service: int, sub: str = "") -> str:
    return f"/services/service-{service}" + (f"/{sub}" if sub else "")


def order_journey(visitor: Visitor, minutes: float, visit: str, service: int) -> None:
    """A panel click on `service`, then offers -> summary -> order."""
    at = visitor.act(minutes, (visit, LIST), page(service), service=service)
    at = visitor.act(minutes + 1, at, page(service, "offers"))
    at = visitor.act(minutes + 2, at, page(service, "summary"))
    visitor.act(minutes + 3, at, "/projects", order=True)


def test_a_journey_posted_through_the_api_becomes_sars(client, user_id, candidates):
    visitor = Visitor(client, user_id)
    first = visitor.recommend(0, candidates)
    a, b, c = first["recommendations"]
    order_journey(visitor, 1, first["visit_id"], a)
    at = visitor.act(10, (first["visit_id"], LIST), page(b), service=b)
    visitor.act(11, at, LIST)  # back to the list: the journey ends there
    second = visitor.recommend(20, [s for s in candidates if s not in (a, b, c)])

    counts = regenerate_sarses()

    assert counts["recommendations"] == 2 and counts["user_actions"] == 6
    assert counts["sarses"] == 2 and counts["terminal"] == 1
    one, two = by_recommendation(first["visit_id"]), by_recommendation(second["visit_id"])
    assert one["action"] == [a, b, c] and not one["terminal"]
    assert set(one["reward"][0]) == {"mild_interest", "interest", "order"}
    assert one["reward"][1] == ["mild_interest", "unknown_transition"]
    assert one["reward"][2] == []
    assert service_values(one["reward"]).tolist() == pytest.approx([1.0, 0.3, 0.0])
    accessed = User.objects(id=user_id).first().accessed_services
    assert one["state"]["user"] == user_id
    assert one["state"]["services_history"] == accessed
    assert one["state"]["candidates"] == candidates
    assert one["next_state"] == two["state"]  # the next recommendation's state
    assert two["state"]["services_history"] == [*accessed, a, b]  # clicks before it
    assert two["terminal"] and two["next_state"]["services_history"] == [*accessed, a, b]
    assert not Recommendation.objects(processed=False).count()
    assert not UserAction.objects(processed=False).count()


def test_services_ordered_from_a_panel_leave_the_base_history(client, user_id, candidates):
    """Accessed services ordered through the panel come back as clicks, at their time."""
    visitor = Visitor(client, user_id)
    first = visitor.recommend(0, candidates)
    a = first["recommendations"][0]
    order_journey(visitor, 1, first["visit_id"], a)
    User.objects(id=user_id).update(push__accessed_services=a)  # the next dump has the order
    second = visitor.recommend(20, candidates)

    regenerate_sarses()

    accessed = User.objects(id=user_id).first().accessed_services
    assert by_recommendation(first["visit_id"])["state"]["services_history"] == accessed[:-1]
    assert by_recommendation(second["visit_id"])["state"]["services_history"] == accessed


def test_anonymous_visitors_are_followed_by_browser(client, candidates):
    browser, other = Visitor(client), Visitor(client)
    first, second = browser.recommend(0, candidates), browser.recommend(5, candidates)
    alone = other.recommend(1, candidates)
    browser.act(6, (second["visit_id"], LIST), page(9), service=second["recommendations"][0])

    regenerate_sarses()

    one, two = by_recommendation(first["visit_id"]), by_recommendation(second["visit_id"])
    assert one["state"]["user"] is None and not one["terminal"]
    assert one["next_state"] == two["state"] and two["terminal"]
    assert two["next_state"]["services_history"] == [second["recommendations"][0]]
    assert by_recommendation(alone["visit_id"])["terminal"]


@pytest.mark.timeout(20)
def test_cycles_in_the_visit_graph_do_not_hang(client, user_id, candidates):
    visitor = Visitor(client, user_id)
    shown = visitor.recommend(0, candidates)
    a = shown["recommendations"][0]
    first = visitor.act(1, (shown["visit_id"], LIST), page(a), service=a)
    second = visitor.act(2, first, page(a, "details"))
    # Two actions that lead back to pages already visited (a replayed or forged visit id).
    visitor.client.post(
        "/user_actions",
        json={
            "user_id": user_id,
            "unique_id": visitor.unique_id,
            "timestamp": "2024-02-21T12:03:00.000+0000",
            "source": {"visit_id": second[0], "page_id": second[1]},
            "target": {"visit_id": first[0], "page_id": page(a)},
            "action": {"type": "button", "text": "Back", "order": False},
        },
    )
    visitor.act(4, first, page(a, "offers"))

    counts = regenerate_sarses()

    assert counts["sarses"] == 1
    reward = by_recommendation(shown["visit_id"])["reward"][0]
    assert {"mild_interest", "interest", "simple_transition"} <= set(reward)


def test_regeneration_is_incremental(client, user_id, candidates, catalogue):
    visitor = Visitor(client, user_id)
    first = visitor.recommend(0, candidates)
    a, _, c = first["recommendations"]
    visitor.act(1, (first["visit_id"], LIST), page(a), service=a)
    second = visitor.recommend(10, candidates)
    regenerate_sarses()
    before = {d["_id"]: d for d in sarses()}

    again = regenerate_sarses()

    assert again["recommendations"] == again["user_actions"] == again["sarses"] == 0
    assert {d["_id"]: d for d in sarses()} == before

    # A late order deep in the first journey, and a first visit by somebody else.
    order_journey(visitor, 11, first["visit_id"], c)
    other_user = next(u["id"] for u in catalogue["users"] if u["id"] != user_id)
    Visitor(client, other_user).recommend(12, candidates)
    third = visitor.recommend(30, candidates)

    counts = regenerate_sarses()

    assert counts["recommendations"] == 2 and counts["user_actions"] == 4
    assert counts["rebuilt"] == 4 and counts["sarses"] == 4  # the two visitors' recs only
    assert len(sarses()) == 4
    one = by_recommendation(first["visit_id"])
    assert service_values(one["reward"]).tolist() == pytest.approx([0.3, 0.0, 1.0])
    assert not by_recommendation(second["visit_id"])["terminal"]  # it was the last one
    assert by_recommendation(third["visit_id"])["terminal"]
    assert one["_id"] in before  # updated in place, not duplicated


def test_a_crash_between_writing_and_marking_loses_nothing(
    client, user_id, candidates, monkeypatch
):
    visitor = Visitor(client, user_id)
    first = visitor.recommend(0, candidates)
    visitor.act(1, (first["visit_id"], LIST), page(9), service=first["recommendations"][1])
    visitor.recommend(10, candidates)

    def crash(document, ids):
        raise RuntimeError("worker killed")

    with monkeypatch.context() as patch:
        patch.setattr(regenerate, "mark_processed", crash)
        with pytest.raises(RuntimeError):
            regenerate_sarses()

    assert len(sarses()) == 2  # written...
    assert Recommendation.objects(processed=False).count() == 2  # ...but not marked

    counts = regenerate_sarses()

    assert counts["recommendations"] == 2 and counts["user_actions"] == 1
    assert len(sarses()) == 2  # rewritten in place: no duplicates
    assert service_values(by_recommendation(first["visit_id"])["reward"]).tolist() == (
        pytest.approx([0.0, 0.3, 0.0])
    )
    assert not Recommendation.objects(processed=False).count()
    assert not UserAction.objects(processed=False).count()


def test_synthetic_sars_are_left_alone(client, user_id, candidates):
    Sars._get_collection().insert_one({"synthetic": True, "action": [1], "state": {}})
    Visitor(client, user_id).recommend(0, candidates)

    regenerate_sarses(full=True)

    assert Sars.objects(synthetic=True).count() == 1
    assert Sars.objects(synthetic=False).count() == 1


def _count_finds(monkeypatch) -> list[str]:
    calls: list[str] = []
    find = mongomock.collection.Collection.find

    def counting(self, *args, **kwargs):
        calls.append(self.name)
        return find(self, *args, **kwargs)

    monkeypatch.setattr(mongomock.collection.Collection, "find", counting)
    return calls


@pytest.mark.parametrize("depth", [1, 40])
def test_reads_do_not_grow_with_journey_depth(client, user_id, candidates, monkeypatch, depth):
    if not isinstance(get_db().client, mongomock.MongoClient):
        pytest.skip("counts mongomock queries")
    visitor = Visitor(client, user_id)
    shown = visitor.recommend(0, candidates)
    a = shown["recommendations"][0]
    at = visitor.act(1, (shown["visit_id"], LIST), page(a), service=a)
    for step in range(depth):
        at = visitor.act(2 + step, at, page(a, "details" if step % 2 else "opinions"))
    calls = _count_finds(monkeypatch)

    regenerate_sarses()

    # Recommendations: one light read + one for candidates; actions, users, stored SARS once;
    # the run's lease.
    assert sorted(calls) == sorted(
        ["recommendation", "recommendation", "user_action", "user", "sars", "lease"]
    )


def test_a_first_page_view_without_visit_matches_nothing(client, user_id, candidates):
    doc = {
        "user": user_id,
        "unique_id": "00000000-0000-0000-0000-000000000001",
        "timestamp": dt.datetime(2024, 1, 1),
        "visit_id": None,
        "services": candidates[:3],
        "candidates": candidates,
        "processed": False,
    }
    get_db()[Recommendation._get_collection_name()].insert_one(doc)
    visitor = Visitor(client, user_id, unique_id=doc["unique_id"])
    visitor.act(1, (None, LIST), page(candidates[0]), service=candidates[0])

    regenerate_sarses()

    [sars] = sarses()
    assert sars["reward"] == [[], [], []] and sars["terminal"]


def test_one_regeneration_at_a_time(app):
    assert leases.acquire(regenerate.LEASE, "another worker", 60)

    with pytest.raises(regenerate.RegenerationBusyError, match="another worker"):
        regenerate_sarses()
