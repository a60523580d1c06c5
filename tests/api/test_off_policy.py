"""`GET /evaluation/off-policy`: its JSON on the hand-made log of tests/evaluation/logged.py,
its 400s, and its place in the generated Swagger."""

from __future__ import annotations

from urllib.parse import unquote

import pytest

from tests.evaluation import logged

PATH = "/evaluation/off-policy"
ESTIMATE_KEYS = {"ips", "snips", "dr"}


@pytest.fixture
def log(app, monkeypatch):
    logged.load_catalogue()
    logged.use_targets(monkeypatch)
    logged.store_log()


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
