"""`GET /evaluation/off-policy`: its JSON on the hand-made log of tests/evaluation/logged.py,
its 400s, and its place in the generated Swagger."""

from __future__ import annotations

from urllib.parse import unquote

import pytest

from recommender.services.bookkeeping import writer
from recommender.store import get_db
from tests.api.helpers import body, load
from tests.evaluation import logged
from tests.user_actions.payloads import REMOVE, user_action

PATH = "/evaluation/off-policy"
ESTIMATE_KEYS = {"ips", "snips", "dr"}


@pytest.fixture
def log(app, monkeypatch):
    logged.prepare(monkeypatch)


def test_the_report_has_the_documented_shape(client, log):
    response = client.get(PATH)

    assert response.status_code == 200
    report = response.get_json()
    assert set(report) == {"logged", "engines"}
    assert report["logged"] == 2
    assert list(report["engines"]) == logged.TARGETS
    for name in ("First", "Named", "Random"):
        engine = report["engines"][name]
        assert engine["n"] == 2 and engine["status"] == "ok"
        for key in ESTIMATE_KEYS:
            assert set(engine[key]) == {"value", "ci"}
            low, high = engine[key]["ci"]
            assert low <= engine[key]["value"] <= high
    assert report["engines"]["First"]["ips"]["value"] == pytest.approx(logged.FIRST_IPS)
    assert report["engines"]["Random"]["snips"]["value"] == pytest.approx(logged.RANDOM_SNIPS)
    untrained = report["engines"]["Untrained"]
    assert untrained["status"] == "not trained" and untrained["reason"] == "Missing model in db"
    assert all(untrained[key] is None for key in ESTIMATE_KEYS)


def test_engines_and_max_logged_narrow_the_report(client, log):
    report = client.get(PATH, query_string={"engines": "random, first", "max_logged": "1"})

    assert report.status_code == 200
    assert list(report.get_json()["engines"]) == ["Random", "First"]
    assert report.get_json()["logged"] == 1


@pytest.mark.parametrize(
    ("query", "field", "says"),
    [
        ({"engines": "First,Nope"}, "engines", "Nope"),
        ({"engines": "RandomRanking"}, "engines", "RandomRanking"),
        ({"engines": " , "}, "engines", "at least one engine"),
        ({"max_logged": "0"}, "max_logged", "greater than or equal to 1"),
        ({"max_logged": "ten"}, "max_logged", "integer"),
        ({"max_logged": "10001"}, "max_logged", "at most 10000"),
    ],
)
def test_bad_query_parameters_are_400s_naming_them(client, log, query, field, says):
    response = client.get(PATH, query_string=query)

    assert response.status_code == 400
    errors = response.get_json()["errors"]
    assert list(errors) == [field]
    assert says in errors[field]


def test_reads_stay_open_when_a_token_is_configured(app, client, log):
    app.config["RS_API_TOKEN"] = "secret"  # as GET /experiments: only POSTs need it

    assert client.get(PATH).status_code == 200


def test_swagger_documents_the_query_and_the_answer(client):
    spec = client.get("/swagger.json").get_json()
    operation = spec["paths"][PATH]["get"]

    assert {p["name"] for p in operation["parameters"]} == {"engines", "max_logged"}
    assert set(operation["responses"]) == {"200", "400", "503"}
    answer = operation["responses"]["200"]["schema"]["$ref"].rsplit("/", 1)[-1]
    definition = spec["definitions"][unquote(answer)]
    assert set(definition["required"]) == {"logged", "engines"}
    estimates = definition["properties"]["engines"]["additionalProperties"]["$ref"]
    engine = spec["definitions"][unquote(estimates.rsplit("/", 1)[-1])]
    assert ESTIMATE_KEYS | {"n", "status", "reason"} <= set(engine["properties"])


def test_served_recommendations_and_their_clicks_feed_the_report(app, client):
    """End to end on the real paths: Random serves anonymous visitors (nothing is trained), each
    visitor clicks the first service shown (/services -> its page: mild interest, 0.3). Random
    judged on its own log has weight 1 everywhere: IPS = SNIPS = 0.3 exactly; the untrained
    engines are listed with their reason."""
    load()
    for _ in range(6):
        shown = client.post("/recommendations", json=body(engine_version="Random")).get_json()
        assert shown["engine_version"] == "Random"
        writer.flush()
        served = get_db().recommendation.find_one({}, sort=[("served_at", -1), ("_id", -1)])
        click = user_action(
            user_id=REMOVE,
            unique_id=served["unique_id"],
            source__visit_id=served["visit_id"],
            source__root__resource_id=shown["recommendations"][0],
            target__page_id=f"/services/{shown['recommendations'][0]}",
        )
        assert client.post("/user_actions", json=click).status_code == 204

    report = client.get(PATH, query_string={"max_logged": 100}).get_json()

    assert report["logged"] == 6
    random = report["engines"]["Random"]
    assert random["n"] == 6
    assert random["ips"]["value"] == pytest.approx(0.3)
    assert random["snips"]["value"] == pytest.approx(0.3)
    assert report["engines"]["NCF"]["status"] == "not trained"
    assert report["engines"]["NCF"]["reason"]
