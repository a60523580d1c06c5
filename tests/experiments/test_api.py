"""`/experiments` over HTTP: create, list, show, stop, and the 4xx that name the field."""

from __future__ import annotations

import pytest

from tests.experiments.helpers import definition


def variants(*triples) -> dict:
    """{"variants": [...]} from (name, engine, share) triples."""
    return {"variants": [{"name": n, "engine": e, "share": s} for n, e, s in triples]}


def post(client, payload, **kwargs):
    return client.post("/experiments", json=payload, **kwargs)


def test_create_answers_201_with_the_running_experiment(client):
    response = post(client, definition(panels=["v1"], clients=["marketplace"]))
    assert response.status_code == 201, response.get_json()
    created = response.get_json()
    assert created["status"] == "running" and created["id"]
    assert response.headers["Location"] == f"/experiments/{created['id']}"
    assert created["panels"] == ["v1"] and created["clients"] == ["marketplace"]
    assert [v["engine"] for v in created["variants"]] == ["Random", "Popularity"]
    assert client.get(f"/experiments/{created['id']}").get_json()["name"] == created["name"]


def test_engine_names_are_stored_as_served(client):
    variants = [{"name": "a", "engine": " random ", "share": 0.5}]
    variants.append({"name": "b", "engine": "POPULARITY", "share": 0.5})
    created = post(client, definition(variants=variants)).get_json()
    assert [v["engine"] for v in created["variants"]] == ["Random", "Popularity"]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        (variants(("a", "Random", 1.0)), "variants"),
        (
            variants(("a", "Random", 0.5), ("b", "Random", 0.4)),
            "variants",
        ),
        (
            variants(("a", "Random", 0.5), ("a", "Popularity", 0.5)),
            "variants",
        ),
        (
            variants(("a", "Random", 0.5), ("b", "Nope", 0.5)),
            "variants.1.engine",
        ),
        (
            variants(("a", "Random", 0.5), ("b", "RandomRanking", 0.5)),
            "variants.1.engine",
        ),
        (
            variants(("a", "Random", -0.5), ("b", "Popularity", 1.5)),
            "variants.0.share",
        ),
        ({"panels": ["v3"]}, "panels.0"),
        ({"clients": ["someone"]}, "clients.0"),
        ({"name": ""}, "name"),
        ({"name": None}, "name"),
        ({"extra": 1}, "extra"),
    ],
)
def test_bad_definitions_are_400s_naming_the_field(client, changes, field):
    response = post(client, definition(**changes))
    assert response.status_code == 400, response.get_json()
    assert field in response.get_json()["errors"], response.get_json()
    assert client.get("/experiments").get_json() == []


@pytest.mark.parametrize("body", ["[]", "null", "{", ""])
def test_a_body_that_is_not_an_object_is_a_400(client, body):
    response = client.post("/experiments", data=body, content_type="application/json")
    assert response.status_code == 400


@pytest.mark.parametrize(
    ("first", "second", "overlap"),
    [
        ({}, {"panels": ["v2"]}, True),  # all panels meet v2
        ({"panels": ["v1"]}, {"panels": ["v2"]}, False),
        ({"panels": ["v1"], "clients": ["marketplace"]}, {"clients": ["user_dashboard"]}, False),
        ({"clients": ["marketplace"]}, {"clients": ["marketplace", "search_service"]}, True),
    ],
)
def test_running_experiments_may_not_overlap_in_scope(client, first, second, overlap):
    assert post(client, definition(name="first", **first)).status_code == 201
    response = post(client, definition(name="second", **second))
    if overlap:
        assert response.status_code == 400 and "panels" in response.get_json()["errors"]
    else:
        assert response.status_code == 201


def test_a_stopped_experiment_frees_its_scope_and_keeps_its_results(client):
    first = post(client, definition(name="first")).get_json()
    stopped = client.post(f"/experiments/{first['id']}/stop")
    assert stopped.status_code == 200
    assert stopped.get_json()["status"] == "stopped" and stopped.get_json()["stopped_at"]
    assert "variants" in stopped.get_json()["results"]  # computed before stopping, then kept
    assert post(client, definition(name="second")).status_code == 201
    listed = client.get("/experiments").get_json()
    assert [e["name"] for e in listed] == ["second", "first"]  # newest first
    assert client.post(f"/experiments/{first['id']}/stop").get_json()["status"] == "stopped"


@pytest.mark.parametrize("path", ["/experiments/nope", "/experiments/6b128f9e1e479f0647433cd6"])
def test_unknown_experiments_are_404s(client, path):
    assert client.get(path).status_code == 404
    assert client.post(f"{path}/stop").status_code == 404


def test_posts_need_the_token_when_one_is_configured(app, client):
    app.config["RS_API_TOKEN"] = "secret"
    assert post(client, definition()).status_code == 401
    created = post(client, definition(), headers={"Authorization": "Bearer secret"})
    assert created.status_code == 201
    experiment = created.get_json()["id"]
    assert client.get(f"/experiments/{experiment}").status_code == 200  # reads stay open
    assert client.post(f"/experiments/{experiment}/stop").status_code == 401
