"""POST /recommendations with Marketplace-shaped requests on a small loaded catalogue."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from recommender.api.openapi import json_schema
from recommender.databus.publisher import message_of
from recommender.dump.schema import DUMP_ADAPTER
from recommender.engines.popularity.pipeline import train as train_popularity
from recommender.models.activity import Recommendation
from recommender.schemas.recommendation import RecommendationRequest, SearchData
from recommender.schemas.user_action import UserActionIn
from recommender.services.bookkeeping import writer
from tests.api.helpers import RESPONSE_KEYS, body, load, recommendable_ids
from tests.app_helpers import change_settings, env
from tests.marketplace_dump import marketplace_dump
from tests.marketplace_dump import service as make_service


@pytest.fixture
def dump(app):
    loaded = load()
    yield loaded
    writer.flush()


@pytest.fixture
def user(dump) -> dict:
    """A user with several accessed services, all of them recommendable ones."""
    return next(
        u for u in dump["users"] if len(set(u["accessed_services"]) & recommendable_ids(dump)) >= 2
    )


def post(client, **overrides):
    return client.post("/recommendations", json=body(**overrides))


def ok(response) -> dict:
    assert response.status_code == 200, response.get_json()
    data = response.get_json()
    assert set(data) == RESPONSE_KEYS
    n = len(data["recommendations"])
    assert len(data["scores"]) == len(data["explanations"]) == len(data["explanations_short"]) == n
    assert all(data["explanations"]) and all(data["explanations_short"])
    return data


def test_logged_in_user_gets_k_recommendable_unaccessed_services(client, dump, user):
    data = ok(post(client, user_id=user["id"]))
    # Nothing trained (NCF, RL not available): the interest-overlap rule, before the floor.
    assert data["engine_version"] == "InterestRule"
    assert data["panel_id"] == "v1"
    assert len(data["recommendations"]) == 3
    assert len(set(data["recommendations"])) == 3
    assert set(data["recommendations"]) <= recommendable_ids(dump)
    assert not set(data["recommendations"]) & set(user["accessed_services"])


def test_user_found_by_aai_uid_when_user_id_is_absent(client, dump, user):
    eligible = recommendable_ids(dump) - set(user["accessed_services"])
    data = ok(post(client, user_id=..., aai_uid=user["aai_uid"], engine_version="RandomRanking"))
    assert set(data["recommendations"]) == eligible


@pytest.mark.parametrize("user_id", ["", ..., None, 987654321])
def test_anonymous_visitors_get_random_before_popularity_is_trained(client, dump, user_id):
    data = ok(post(client, user_id=user_id))
    assert data["engine_version"] == "Random"
    assert len(data["recommendations"]) == 3


@pytest.mark.parametrize("user_id", ["", ..., 987654321])
def test_anonymous_visitors_get_popularity_once_trained(client, dump, user_id):
    assert train_popularity(env()).status == "promoted"
    data = ok(post(client, user_id=user_id))
    assert data["engine_version"] == "Popularity"
    orders = [s for u in dump["users"] for s in u["accessed_services"]]
    best = max(recommendable_ids(dump), key=lambda s: (orders.count(s), -s))
    assert data["recommendations"][0] == best
    assert data["scores"] == sorted(data["scores"], reverse=True)


def test_candidates_filter_the_answer(client, dump):
    wanted = sorted(recommendable_ids(dump))[:4]
    not_recommendable = [s["id"] for s in dump["services"] if s["status"] == "draft"]
    candidates = [*wanted, *not_recommendable, 424242, -7, wanted[0]]
    data = ok(post(client, candidates=candidates, engine_version="RandomRanking"))
    assert sorted(data["recommendations"]) == wanted


def test_search_context_moves_popularity(client, dump):
    train_popularity(env())
    category = 12
    in_category = {s["id"] for s in dump["services"] if category in s["categories"]}
    data = ok(post(client, search_data={"categories": [category], "q": "x", "rating": "5"}))
    plain = ok(post(client))
    assert data["engine_version"] == plain["engine_version"] == "Popularity"
    top_matching = sum(s in in_category for s in data["recommendations"])
    assert top_matching > sum(s in in_category for s in plain["recommendations"])
    assert data["explanations_short"][0] == "Popular in your search"


@pytest.mark.parametrize(
    ("engine", "answered"),
    [
        ("RandomRanking", "RandomRanking"),
        ("randomranking", "RandomRanking"),
        ("NCFRanking", "InterestRuleRanking"),  # NCF untrained: the next ranking engine
    ],
)
def test_ranking_requests_always_get_a_ranking(client, dump, user, engine, answered):
    eligible = recommendable_ids(dump) - set(user["accessed_services"])
    data = ok(post(client, user_id=user["id"], engine_version=engine))
    assert data["engine_version"] == answered
    assert sorted(data["recommendations"]) == sorted(eligible)


def test_anonymous_ranking_uses_popularity_when_trained(client, dump):
    train_popularity(env())
    data = ok(post(client, engine_version="NCFRanking"))
    assert data["engine_version"] == "Popularity"
    assert sorted(data["recommendations"]) == sorted(recommendable_ids(dump))


def test_unknown_engine_is_ignored(client, dump, user):
    data = ok(post(client, user_id=user["id"], engine_version="NoSuchEngine"))
    assert data["engine_version"] == "InterestRule"
    assert len(data["recommendations"]) == 3


@pytest.mark.parametrize(
    ("panel", "k", "effective"),
    [("v1", 3, "v1"), ("v2", 2, "v2"), ("service", 3, "v1"), ("", 3, "v1"), (..., 3, "v1")],
)
def test_panels(client, dump, panel, k, effective):
    data = ok(post(client, panel_id=panel))
    assert data["panel_id"] == effective
    assert len(data["recommendations"]) == k


@pytest.mark.parametrize("engine", ["Random", "RandomRanking", "Popularity"])
def test_accessed_services_are_excluded_by_every_engine(client, dump, user, engine):
    train_popularity(env())
    accessed = [s for s in user["accessed_services"] if s in recommendable_ids(dump)]
    others = sorted(recommendable_ids(dump) - set(user["accessed_services"]))[:2]
    data = ok(post(client, user_id=user["id"], engine_version=engine, candidates=accessed + others))
    assert data["engine_version"] == engine
    assert sorted(data["recommendations"]) == others  # fewer than K: what is eligible


def test_non_recommendable_services_are_never_returned(client, dump):
    for _ in range(10):
        data = ok(post(client, engine_version="RandomRanking"))
        assert set(data["recommendations"]) == recommendable_ids(dump)
        data = ok(post(client, engine_version="Random"))
        assert set(data["recommendations"]) <= recommendable_ids(dump)


def test_empty_result_keeps_the_full_shape_and_is_not_stored(client, dump):
    drafts = [s["id"] for s in dump["services"] if s["status"] not in ("published", "unverified")]
    data = ok(post(client, candidates=drafts))
    assert data["recommendations"] == data["scores"] == data["explanations"] == []
    assert data["explanations_short"] == []
    assert data["engine_version"] == "Random"
    writer.flush()
    assert Recommendation.objects.count() == 0


def test_no_catalogue_gives_an_empty_answer(client):
    data = ok(post(client))
    assert data["recommendations"] == []


def test_same_request_gets_the_same_random_answer(client, dump):
    request = body(engine_version="Random")
    first = ok(client.post("/recommendations", json=request))
    assert ok(client.post("/recommendations", json=request)) == first


@pytest.mark.parametrize(
    ("timestamp", "expected"),
    [
        ("2024-02-21T15:19:43.512+0100", dt.datetime(2024, 2, 21, 14, 19, 43, 512000)),
        ("2024-02-21T14:19:43.512Z", dt.datetime(2024, 2, 21, 14, 19, 43, 512000)),
        ("2024-02-21T16:19:43+02:00", dt.datetime(2024, 2, 21, 14, 19, 43)),
        ("2024-02-21T14:19:43", dt.datetime(2024, 2, 21, 14, 19, 43)),
    ],
)
def test_timestamps_in_every_client_shape_are_stored_as_naive_utc(
    client, dump, timestamp, expected
):
    ok(post(client, timestamp=timestamp))
    writer.flush()
    assert Recommendation.objects.get().timestamp == expected


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"unique_id": "not-a-uuid"}, "unique_id"),
        ({"unique_id": ...}, "unique_id"),
        ({"visit_id": "123"}, "visit_id"),
        ({"visit_id": ...}, "visit_id"),
        ({"timestamp": "yesterday"}, "timestamp"),
        ({"timestamp": "2024-13-45T99:00:00Z"}, "timestamp"),
        ({"timestamp": "9999-12-31T23:59:59-10:00"}, "timestamp"),
        ({"panel_id": "v3"}, "panel_id"),
        ({"client_id": "someone"}, "client_id"),
        ({"user_id": "abc"}, "user_id"),
        ({"user_id": True}, "user_id"),
        ({"user_id": 1.5}, "user_id"),
        ({"page_id": ...}, "page_id"),
        ({"search_data": ...}, "search_data"),
        ({"search_data": None}, "search_data"),
        ({"candidates": ["a"]}, "candidates.0"),
        ({"search_data": {"categories": "1"}}, "search_data.categories"),
    ],
)
def test_bad_values_are_400s_naming_the_field(client, dump, overrides, field):
    response = post(client, **overrides)
    assert response.status_code == 400
    assert field in response.get_json()["errors"]


@pytest.mark.parametrize("payload", ["[]", '"text"', "3", "null", "{", ""])
def test_a_body_that_is_not_an_object_is_a_400(client, dump, payload):
    response = client.post("/recommendations", data=payload, content_type="application/json")
    assert response.status_code == 400


def test_a_body_that_is_not_json_is_a_415(client, dump):
    response = client.post("/recommendations", data="user_id=1", content_type="text/plain")
    assert response.status_code == 415


def test_ids_beyond_64_bits_are_400s_naming_each_field(client, dump):
    huge = 2**80
    response = post(client, user_id=huge, candidates=[1, huge], search_data={"providers": [huge]})
    assert response.status_code == 400
    errors = response.get_json()["errors"]
    assert set(errors) == {"user_id", "candidates.1", "search_data.providers.0"}
    assert "64-bit" in errors["user_id"]


@pytest.mark.parametrize("big_id", [1000, 2**24 + 1, 2**40])  # dense table, binary search
def test_large_and_negative_ids_are_looked_up_correctly(client, app, big_id):
    dump = marketplace_dump()
    dump["services"].append(make_service(big_id, "published"))
    dump["services"].append(make_service(big_id + 2, "draft"))
    load(dump)
    candidates = [big_id, big_id + 2, 1, 3, 5, -1, 2**30, 0]
    data = ok(post(client, candidates=candidates, engine_version="RandomRanking"))
    # 1 is published and 3 unverified; 5 is a draft; the rest are not services at all.
    assert sorted(data["recommendations"]) == [1, 3, big_id]


def test_a_ranking_is_stored_as_answered(client, dump):
    candidates = [*sorted(recommendable_ids(dump), reverse=True), 2**40]  # one id unknown
    data = ok(post(client, candidates=candidates, engine_version="RandomRanking"))
    writer.flush()
    stored = Recommendation._get_collection().find_one()
    assert len(data["recommendations"]) > 3
    assert stored["services"] == data["recommendations"]
    assert stored["scores"] == data["scores"]
    assert stored["candidates"] == candidates


def test_each_recommendation_is_stored_with_its_context(client, dump, user):
    request = body(
        user_id=user["id"],
        aai_uid=user["aai_uid"],
        panel_id="v2",
        candidates=sorted(recommendable_ids(dump)),
        search_data={"categories": [10], "q": "storage", "rating": "5"},
        client_id="search_service",
    )
    data = ok(client.post("/recommendations", json=request))
    assert writer.pending() >= 1  # deferred, not written on the request path
    writer.flush()
    stored = Recommendation.objects.get()
    assert stored.user == user["id"]
    assert stored.aai_uid == user["aai_uid"]
    assert stored.unique_id == request["unique_id"]
    assert stored.visit_id == request["visit_id"]
    assert stored.page_id == "/services"
    assert stored.panel_id == "v2"
    assert stored.client_id == "search_service"
    assert stored.engine_version == data["engine_version"]
    assert stored.services == data["recommendations"]
    assert stored.scores == data["scores"]
    assert stored.candidates == sorted(recommendable_ids(dump))
    assert stored.search_data.categories == [10]
    assert stored.search_data.q == "storage"
    assert stored.timestamp == dt.datetime(2024, 2, 21, 14, 19, 43, 512000)
    assert stored.processed is False


def test_a_user_known_only_by_aai_uid_is_stored_as_that_user(client, dump, user):
    ok(post(client, user_id="", aai_uid=user["aai_uid"]))
    writer.flush()
    assert Recommendation.objects.get().user == user["id"]


def test_only_marketplace_answers_wait_in_the_databus_outbox(client, dump):
    """The stored document is the outbox: it rebuilds the message the original published (the
    request completed with the panel and candidates, and the response as sent)."""
    for client_id in ("search_service", "user_dashboard", "undefined", ...):
        ok(post(client, client_id=client_id))
    request = body(client_id="marketplace", panel_id="service")
    data = ok(client.post("/recommendations", json=request))
    writer.flush()
    stored = list(Recommendation._get_collection().find({}, {"_id": 0}))
    [waiting] = [doc for doc in stored if "published" in doc]
    assert waiting["published"] is False and waiting["client_id"] == "marketplace"
    assert json.loads(message_of(waiting)) == {
        "recommender_system": "recommender",
        "context": {
            **request,
            "panel_id": "v1",
            "candidates": sorted(recommendable_ids(dump)),
        },
        "response": data,
    }


def test_nothing_waits_for_the_databus_when_publishing_is_off(client, dump):
    change_settings(RS_DATABUS_ENABLED=False)
    ok(post(client, client_id="marketplace"))
    writer.flush()
    [stored] = Recommendation._get_collection().find()
    assert "published" not in stored and "request" not in stored


def test_a_new_catalogue_is_served_without_restart(client, dump):
    first = ok(post(client, engine_version="RandomRanking"))
    new = marketplace_dump()
    new["services"].append(make_service(1001, "published"))
    load(new)
    second = ok(post(client, engine_version="RandomRanking"))
    assert 1001 in second["recommendations"]
    assert 1001 not in first["recommendations"]


def test_post_needs_the_token_when_one_is_configured(app, client, dump):
    app.config["RS_API_TOKEN"] = "secret"
    assert post(client).status_code == 401
    response = client.post(
        "/recommendations", json=body(), headers={"Authorization": "Bearer secret"}
    )
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("name", "model"),
    [
        ("Recommendation context", RecommendationRequest),
        ("Search Data", SearchData),
        ("User Action", UserActionIn),
        ("Database dump", DUMP_ADAPTER),
    ],
)
def test_the_documented_schema_is_the_validated_one(client, name, model):
    definitions = client.get("/swagger.json").get_json()["definitions"]
    generated = json_schema(model)
    expected = generated["definitions"].get(name) or {
        k: v for k, v in generated.items() if k != "definitions"
    }
    assert definitions[name] == expected
    fields = getattr(model, "model_fields", None)
    if fields is not None:  # the validator's own view of the fields agrees
        assert set(definitions[name]["properties"]) == set(fields)
        required = {field for field, info in fields.items() if info.is_required()}
        assert set(definitions[name].get("required", [])) == required
