"""`POST /user_actions`: every client's actions stored once; bad values are a 400 naming them."""

from __future__ import annotations

import datetime as dt

import pytest
from prometheus_client import REGISTRY

from recommender.models.activity import UserAction
from recommender.models.marketplace import User
from tests.user_actions.payloads import REMOVE, user_action


def post(client, body):
    return client.post("/user_actions", json=body)


def stored() -> list[dict]:
    return list(UserAction._get_collection().find({}, {"_id": 0}))


def counter(name: str, source: str = "http") -> float:
    return REGISTRY.get_sample_value(f"recommender_user_actions_{name}_total", {"source": source})


def test_a_marketplace_panel_click_is_stored(client):
    body = user_action(unique_id="5642C351-80FE-44CF-B606-304F2F338122")
    response = post(client, body)
    assert response.status_code == 204
    assert response.data == b""
    [action] = stored()
    assert action["user"] == 7
    assert action["unique_id"] == "5642c351-80fe-44cf-b606-304f2f338122"  # canonical
    assert action["client_id"] == "marketplace"
    assert action["timestamp"] == dt.datetime(2024, 2, 21, 14, 19, 43, 512000)  # naive UTC
    assert action["source"]["root"] == {
        "type": "recommendation_panel",
        "panel_id": "v1",
        "resource_type": "service",
        "service": 1234,
        "resource_id": None,
    }
    assert action["source"]["visit_id"] == body["source"]["visit_id"]
    assert action["target"] == body["target"]
    assert action["action"] == body["action"]
    assert action["channel"] == "http"
    assert action["processed"] is False


@pytest.mark.parametrize("spelling", ["recommendation-panel", "recommendation_panel"])
def test_both_panel_root_spellings_are_the_panel(client, spelling):
    assert post(client, user_action(source__root__type=spelling)).status_code == 204
    assert stored()[0]["source"]["root"]["type"] == "recommendation_panel"


@pytest.mark.parametrize(
    ("client_id", "root", "service", "resource_id"),
    [
        ("marketplace", REMOVE, None, None),  # a follow-up action, no root
        ("marketplace", {"type": "other"}, None, None),
        (
            "search_service",
            {"type": "search_results", "resource_type": "datasource", "resource_id": "ds-17"},
            None,
            "ds-17",
        ),
        (
            "user_dashboard",
            {"type": "recommendation_panel", "resource_type": "service", "resource_id": "abc"},
            None,
            "abc",
        ),
        ("undefined", {"type": "list", "resource_type": "training", "resource_id": 5}, None, "5"),
        (
            REMOVE,
            {"type": "recommendation_panel", "resource_type": "service", "resource_id": 9},
            9,
            None,
        ),
    ],
)
def test_every_client_is_stored_with_its_resource_ids(
    client, client_id, root, service, resource_id
):
    body = user_action(client_id=client_id, source__root=root)
    assert post(client, body).status_code == 204
    [action] = stored()
    assert action["client_id"] == (None if client_id is REMOVE else client_id)
    if root is REMOVE:
        assert action["source"].get("root") is None
    else:
        assert action["source"]["root"]["service"] == service
        assert action["source"]["root"]["resource_id"] == resource_id
        assert action["source"]["root"]["type"] == root["type"]


def test_a_first_page_view_has_a_null_source_visit(client):
    assert post(client, user_action(source__visit_id=None)).status_code == 204
    assert stored()[0]["source"]["visit_id"] is None


@pytest.mark.parametrize(
    ("changes", "user"),
    [
        ({"user_id": REMOVE, "aai_uid": "known@egi.eu"}, 42),
        ({"user_id": "", "aai_uid": "known@egi.eu"}, 42),  # "" means no user id
        ({"user_id": REMOVE, "aai_uid": "stranger@egi.eu"}, None),  # stored without a user
        ({"user_id": 5, "aai_uid": "known@egi.eu"}, 5),  # user_id wins
        ({"user_id": REMOVE}, None),
    ],
)
def test_aai_uid_is_resolved_when_user_id_is_missing(client, changes, user):
    User(id=42, aai_uid="known@egi.eu").save()
    assert post(client, user_action(**changes)).status_code == 204
    assert stored()[0]["user"] == user


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"unique_id": "not-a-uuid"}, "unique_id"),
        ({"unique_id": REMOVE}, "unique_id"),
        ({"timestamp": "yesterday"}, "timestamp"),
        ({"timestamp": "2024-13-45T25:00:00Z"}, "timestamp"),
        ({"timestamp": 1708525183}, "timestamp"),
        ({"source__visit_id": "visit-1"}, "source.visit_id"),
        ({"target__visit_id": "zz"}, "target.visit_id"),
        ({"target__visit_id": None}, "target.visit_id"),
        ({"client_id": "provider_portal"}, "client_id"),
        ({"user_id": "abc"}, "user_id"),
        ({"user_id": "99999999999999999999"}, "user_id"),  # past 64 bits: cannot be stored
        ({"user_id": 2**70}, "user_id"),
        ({"source__root__resource_id": 2**70}, "source.root.resource_id"),
        ({"timestamp": "9999-12-31T23:59:59-10:00"}, "timestamp"),  # past year 9999 in UTC
        ({"action__order": "yes"}, "action.order"),
        ({"action": REMOVE}, "action"),
        ({"source__page_id": REMOVE}, "source.page_id"),
        ({"source__root__type": REMOVE}, "source.root.type"),
        ({"source__root__resource_id": 1.5}, "source.root.resource_id"),
        ({"source__root": None}, "source.root"),
        ({"target__page_id": "/services/\ud800"}, "target.page_id"),  # MongoDB refuses it
        ({"source__root__resource_id": "\udfff"}, "source.root.resource_id"),
    ],
)
def test_bad_values_are_a_400_naming_the_field(client, changes, field):
    before = counter("rejected") or 0.0
    response = post(client, user_action(**changes))
    assert response.status_code == 400
    errors = response.get_json()["errors"]
    assert any(key == field or key.endswith(f".{field}") for key in errors), errors
    assert stored() == []
    assert counter("rejected") == before + 1


@pytest.mark.parametrize("body", ["[1, 2]", '"text"', "3", "null"])
def test_a_body_that_is_not_an_object_is_a_400(client, body):
    response = client.post("/user_actions", data=body, content_type="application/json")
    assert response.status_code == 400


def test_invalid_json_is_a_4xx(client):
    response = client.post("/user_actions", data="{oops", content_type="application/json")
    assert response.status_code == 400


def test_extra_keys_are_ignored_everywhere(client):
    body = user_action(
        extra=1,
        source__extra={"a": 1},
        source__root__extra=[1],
        target__extra="x",
        action__extra=None,
    )
    assert post(client, body).status_code == 204
    [action] = stored()
    assert "extra" not in action and "extra" not in action["action"]


def test_an_action_sent_twice_is_stored_once(client):
    body = user_action()
    stored_before, duplicates_before = counter("stored") or 0.0, counter("duplicate") or 0.0
    assert post(client, body).status_code == 204
    assert post(client, body).status_code == 204
    assert len(stored()) == 1
    assert counter("stored") == stored_before + 1
    assert counter("duplicate") == duplicates_before + 1


def test_one_instant_in_every_timestamp_shape_is_one_action(client):
    body = user_action()
    for shape in (
        "2024-02-21T15:19:43.512+0100",
        "2024-02-21T14:19:43.512Z",
        "2024-02-21T15:19:43.512+01:00",
    ):
        assert post(client, {**body, "timestamp": shape}).status_code == 204
    [action] = stored()
    assert action["timestamp"] == dt.datetime(2024, 2, 21, 14, 19, 43, 512000)


def test_different_actions_of_one_visit_are_all_stored(client):
    first = user_action()
    second = {**first, "action": {"type": "button", "text": "Order", "order": True}}
    assert post(client, first).status_code == 204
    assert post(client, second).status_code == 204
    assert sorted(a["action"]["text"] for a in stored()) == ["Details", "Order"]


def test_posting_needs_the_token_when_one_is_configured(app, client):
    app.config["RS_API_TOKEN"] = "secret"
    assert post(client, user_action()).status_code == 401
    response = client.post(
        "/user_actions", json=user_action(), headers={"Authorization": "Bearer secret"}
    )
    assert response.status_code == 204


def test_swagger_documents_the_endpoint_and_its_models(client):
    spec = client.get("/swagger.json").get_json()
    assert "post" in spec["paths"]["/user_actions"]
    for model in ("Root info", "Source", "Target", "Action", "User Action"):
        assert model in spec["definitions"]
    assert spec["definitions"]["User Action"]["properties"]["timestamp"]["example"]
