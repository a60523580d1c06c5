"""An engine is one folder: adding `toy/` (tests/architecture/toy_engine/toy) to the engines
package and naming it in ENGINES is all it takes for it to be served, trained (`flask train` and
`/update`'s chain, after what it requires), evaluated (`flask evaluate`) and health-checked."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

import recommender.engines
from recommender import create_app
from tests.api.helpers import body, load, recommendable_ids

TOY_FOLDER = Path(__file__).parent / "toy_engine"
ENGINES = "Toy,ToyRanking,Popularity,Random,RandomRanking"


@pytest.fixture
def toy_app(store_overrides, monkeypatch):
    """The app with the toy folder under recommender/engines (as if copied there)."""
    monkeypatch.setattr(
        recommender.engines, "__path__", [*recommender.engines.__path__, str(TOY_FOLDER)]
    )
    app = create_app(
        "testing",
        **store_overrides,
        CELERY_TASK_ALWAYS_EAGER=True,
        RS_API_TOKEN=None,
        ENGINES=ENGINES,
    )
    with app.app_context():
        yield app
    for name in [m for m in sys.modules if m.startswith("recommender.engines.toy")]:
        del sys.modules[name]


def test_a_new_engine_folder_is_served_trained_evaluated_and_health_checked(toy_app):
    dump = load()
    client, cli = toy_app.test_client(), toy_app.test_cli_runner()
    user = next(u for u in dump["users"] if u["accessed_services"])

    engines = client.get("/health").get_json()["recommender_engines"]
    assert engines["Toy"] == {"status": "DOWN", "error": "Missing model in db"}
    untrained = client.post("/recommendations", json=body(user_id=user["id"], engine_version="Toy"))
    assert untrained.get_json()["engine_version"] == "Random"  # not ready: the next one

    trained = cli.invoke(args=["train", "toy"])
    assert trained.exit_code == 0, trained.output
    assert "Toy: promoted v1" in trained.output
    assert client.get("/health").get_json()["recommender_engines"]["Toy"] == {"status": "UP"}

    top = client.post("/recommendations", json=body(user_id=user["id"], engine_version="Toy"))
    assert top.get_json()["engine_version"] == "Toy"
    scores = top.get_json()["scores"]
    assert len(scores) == 3 and scores == sorted(scores, reverse=True)
    ranked = client.post(
        "/recommendations", json=body(user_id=user["id"], engine_version="ToyRanking")
    ).get_json()
    eligible = recommendable_ids(dump) - set(user["accessed_services"])
    assert ranked["engine_version"] == "ToyRanking" and set(ranked["recommendations"]) == eligible

    chain = cli.invoke(args=["train", "all", "--yes"])
    lines = [line.split(":")[0] for line in chain.output.splitlines() if ": " in line]
    assert lines == ["Popularity", "Toy"]  # its stage runs after the one it requires

    evaluated = cli.invoke(args=["evaluate", "--only", "offline", "--json", "-k", "3"])
    toy = json.loads(evaluated.output)["offline"]["Toy"]
    assert toy["status"] == "ok" and toy["users"] > 0 and 0.0 <= toy["hr@3"] <= 1.0
