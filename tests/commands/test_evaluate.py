"""`flask evaluate`: hitrate of served panels on handmade traffic, offline metrics table."""

from __future__ import annotations

import datetime as dt
import json
import types
import uuid

import pytest

from recommender.model_store.versions import NoModelError
from recommender.store import get_db
from tests.app_helpers import use_evaluators

VISITS = {name: str(uuid.uuid4()) for name in ("ncf_v1", "rl_v1", "ncf_v2", "unserved")}
# (engine, panel, visit) of each served recommendation; one first page view has no visit.
RECOMMENDATIONS = [
    ("NCF", "v1", VISITS["ncf_v1"]),
    ("RL", "v1", VISITS["rl_v1"]),
    ("NCF", "v2", VISITS["ncf_v2"]),
    ("NCF", "v1", None),
]
# (visit the action started in, root type); both panel spellings count as the panel.
ACTIONS = [
    (VISITS["ncf_v1"], "recommendation_panel"),
    (VISITS["ncf_v1"], "recommendation-panel"),
    (VISITS["ncf_v1"], "other_list"),
    (VISITS["rl_v1"], "recommendation_panel"),
    (VISITS["ncf_v2"], None),
    (VISITS["ncf_v2"], "other_list"),
    (VISITS["unserved"], "recommendation_panel"),
    (None, "recommendation_panel"),
]


@pytest.fixture
def traffic(app):
    now = dt.datetime(2024, 2, 21, 15, 0)
    get_db().recommendation.insert_many(
        [
            {"unique_id": str(uuid.uuid4()), "timestamp": now, "engine_version": engine,
             "panel_id": panel, "visit_id": visit, "services": [1, 2, 3]}
            for engine, panel, visit in RECOMMENDATIONS
        ]
    )  # fmt: skip
    get_db().user_action.insert_many(
        [
            {
                "unique_id": str(uuid.uuid4()),
                "timestamp": now,
                "source": {"visit_id": visit, "page_id": "/services",
                           "root": {"type": root, "service": 1} if root else None},
                "target": {"visit_id": str(uuid.uuid4()), "page_id": "/services/1"},
                "action": {"type": "browser action", "text": "", "order": False},
                "_id": uuid.uuid4().hex,  # the fingerprint: any unique text here
            }
            for visit, root in ACTIONS
        ]
    )  # fmt: skip


def expected(engine: str | None, panel: str | None) -> tuple[int, int]:
    """(panel clicks, other clicks) of the visits served by `engine` in `panel`, by hand."""
    visits = {
        v
        for e, p, v in RECOMMENDATIONS
        if v and (engine is None or e == engine) and (panel is None or p == panel)
    }
    chosen = [root for visit, root in ACTIONS if visit in visits]
    panel_clicks = sum(root in ("recommendation_panel", "recommendation-panel") for root in chosen)
    return panel_clicks, len(chosen) - panel_clicks


@pytest.mark.parametrize(
    ("options", "engine", "panel", "hitrate"),
    [
        (["--engine", "NCF", "--panel", "v1"], "NCF", "v1", "66.67%"),  # 2 panel, 1 other
        ([], None, None, "50.00%"),  # 3 panel, 3 other
        (["--engine", "NCF"], "NCF", None, "40.00%"),  # 2 panel, 3 other
        (["--panel", "v2"], None, "v2", "0.00%"),  # 0 panel, 2 other
    ],
)
def test_hitrate_of_served_panels(cli, traffic, options, engine, panel, hitrate):
    panel_clicks, other_clicks = expected(engine, panel)

    result = cli("evaluate", "--only", "hitrate", *options)

    assert result.exit_code == 0, result.output
    assert f"panel clicks: {panel_clicks}  other clicks: {other_clicks}" in result.output
    assert f"hitrate: {100 * panel_clicks / (panel_clicks + other_clicks):.2f}%" in result.output
    assert f"hitrate: {hitrate}" in result.output
    assert "Offline" not in result.output


def test_hitrate_as_json(cli, traffic):
    result = cli("evaluate", "--only", "hitrate", "--engine", "NCF", "--panel", "v1", "--json")

    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {
        "hitrate": {
            "engine": "NCF",
            "panel": "v1",
            "recommendations": 2,
            "visits": 1,
            "panel_clicks": 2,
            "other_clicks": 1,
            "hitrate": 66.67,
        }
    }


def test_an_empty_selection_has_no_hitrate_and_no_crash(cli, traffic):
    result = cli("evaluate", "--engine", "Nope", "--json")

    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["hitrate"]["hitrate"] is None
    assert "n/a" in cli("evaluate", "--engine", "Nope").output


@pytest.fixture
def evaluators(app, monkeypatch):
    """Evaluators of a trained engine, an untrained one and a third; `calls` records the Ks."""
    calls = []

    def trained(deps, ks):
        calls.append(ks)
        return {"users": 40, **{f"hr@{k}": k / 20 for k in ks}, **{f"ndcg@{k}": k / 40 for k in ks}}

    def untrained(deps, ks):
        raise NoModelError("No stored model 'ncf'")

    fakes = {
        "Popularity": trained,
        "NCF": untrained,
        "RL": lambda deps, ks: {"users": 7, "hr@3": 0.5},
    }
    use_evaluators(monkeypatch, fakes)
    return types.SimpleNamespace(calls=calls, fakes=fakes)


def test_offline_metrics_table(cli, evaluators):
    result = cli("evaluate", "--only", "offline", "-k", "3", "-k", "10")

    assert result.exit_code == 0, result.output
    assert evaluators.calls == [(3, 10)]
    rows = {line.split()[0]: line.split() for line in result.output.splitlines()[1:]}
    assert rows["engine"] == ["engine", "users", "hr@3", "ndcg@3", "hr@10", "ndcg@10"]
    assert rows["Popularity"] == ["Popularity", "40", "0.15", "0.075", "0.5", "0.25"]
    assert rows["RL"] == ["RL", "7", "0.5", "-", "-", "-"]
    assert "NCF: not trained (No stored model 'ncf')" in result.output
    assert "Hitrate" not in result.output


def test_offline_metrics_as_json_and_a_failing_evaluator_fails_the_command(
    cli, evaluators, monkeypatch
):
    def broken(deps, ks):
        raise ValueError("held-out set is empty")

    use_evaluators(monkeypatch, {**evaluators.fakes, "NCF": broken})

    result = cli("evaluate", "--json", "-k", "5")

    assert result.exit_code == 1
    output = json.loads(result.output)
    assert output["offline"]["Popularity"] == {
        "status": "ok",
        "users": 40,
        "hr@5": 0.25,
        "ndcg@5": 0.125,
    }
    assert output["offline"]["NCF"]["status"] == "failed"
    assert "held-out set is empty" in output["offline"]["NCF"]["reason"]
    assert output["hitrate"]["recommendations"] == 0


def test_no_registered_evaluator_is_said_plainly(cli, monkeypatch):
    use_evaluators(monkeypatch, {})

    result = cli("evaluate", "--only", "offline")

    assert result.exit_code == 0
    assert "no engine has an offline evaluator registered" in result.output


def test_evaluate_explains_itself(cli):
    result = cli("evaluate", "--help")

    assert result.exit_code == 0
    for text in ("Hitrate", "NDCG@K", "--engine", "--panel", "--json", "-k"):
        assert text in result.output
