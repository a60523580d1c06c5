"""Assignment: a stable, salted hash of the visitor, in proportion to the shares, in scope."""

from __future__ import annotations

import json
import uuid

import numpy as np
import pytest
from scipy import stats

from recommender.databus.publisher import message_of
from recommender.models.experiments import Experiment, Variant
from recommender.services.bookkeeping import writer
from recommender.services.experiments.assignment import RunningExperiment
from recommender.store import get_db
from tests.api.helpers import load
from tests.experiments.helpers import definition, serve


def running(shares=(0.5, 0.5), salt="0123456789abcdef", **scope) -> RunningExperiment:
    variants = [Variant(name=f"v{i}", engine="Random", share=s) for i, s in enumerate(shares)]
    return RunningExperiment.of(Experiment(id=None, salt=salt, variants=variants, **scope))


def test_one_visitor_always_gets_the_same_variant():
    experiment = running()
    for visitor in (str(uuid.UUID(int=i)) for i in range(50)):
        assert len({experiment.assign(visitor).variant for _ in range(5)}) == 1


@pytest.mark.parametrize("shares", [(0.5, 0.5), (0.2, 0.3, 0.5), (0.9, 0.1)])
def test_visitors_split_in_proportion_to_the_shares(shares):
    experiment = running(shares)
    visitors = 20_000
    assigned = [experiment.assign(f"visitor-{i}").variant for i in range(visitors)]
    observed = [assigned.count(f"v{i}") for i in range(len(shares))]
    _, p_value = stats.chisquare(observed, [s * visitors for s in shares])
    assert p_value > 0.001, observed


def test_each_experiment_splits_visitors_on_its_own():
    first, second = running(salt="aaaaaaaaaaaaaaaa"), running(salt="bbbbbbbbbbbbbbbb")
    pairs = [(first.assign(f"u{i}").variant, second.assign(f"u{i}").variant) for i in range(4000)]
    same = np.mean([a == b for a, b in pairs])
    assert abs(same - 0.5) < 0.05  # independent halves agree half the time


def test_scope_is_panels_and_clients_with_empty_meaning_all():
    scoped = running(panels=["v1"], clients=["marketplace"])
    assert scoped.covers("v1", "marketplace")
    assert not scoped.covers("v2", "marketplace") and not scoped.covers("v1", "search_service")
    assert running().covers("v2", None)


def test_requests_in_scope_carry_their_variant_and_are_stored_with_it(client):
    load()
    experiment = client.post("/experiments", json=definition(panels=["v1"])).get_json()
    visitor = str(uuid.uuid4())
    first = serve(client, visitor)
    assert first["experiment"]["id"] == experiment["id"]
    assert serve(client, visitor)["experiment"] == first["experiment"]  # the same visitor
    assert "experiment" not in serve(client, visitor, panel_id="v2")  # out of scope
    writer.flush()
    stored = list(get_db().recommendation.find({}, {"experiment": 1, "variant": 1, "panel_id": 1}))
    in_scope = [doc for doc in stored if doc["panel_id"] == "v1"]
    assert {(d["experiment"], d["variant"]) for d in in_scope} == {
        (experiment["id"], first["experiment"]["variant"])
    }
    assert [d["experiment"] for d in stored if d["panel_id"] == "v2"] == [None]


def test_the_variant_engine_answers_and_a_fallback_is_counted(client):
    load()
    # Popularity is not trained: its visitors get Random, the usual fallback, counted.
    variants = [{"name": n, "engine": "Popularity", "share": 0.5} for n in ("a", "b")]
    experiment = client.post("/experiments", json=definition(variants=variants)).get_json()
    answer = serve(client)
    variant = answer["experiment"]["variant"]
    assert answer["experiment"]["id"] == experiment["id"] and variant in {"a", "b"}
    assert answer["engine_version"] == "Random"
    labels = f'{{experiment="{experiment["id"]}",variant="{variant}"}} 1.0'
    metrics = client.get("/metrics").get_data(as_text=True)
    assert f"recommender_experiment_fallbacks_total{labels}" in metrics
    assert f"recommender_experiment_impressions_total{labels}" in metrics


def test_a_new_experiment_reaches_serving_and_a_stopped_one_leaves_it(client):
    load()
    assert "experiment" not in serve(client)
    experiment = client.post("/experiments", json=definition()).get_json()
    assert serve(client)["experiment"]["id"] == experiment["id"]
    client.post(f"/experiments/{experiment['id']}/stop")
    assert "experiment" not in serve(client)


def test_the_published_message_carries_the_experiment_as_the_response_did(client):
    load()
    client.post("/experiments", json=definition())
    shown = serve(client)  # a Marketplace request: stored as the databus outbox
    writer.flush()
    [document] = get_db().recommendation.find()
    message = json.loads(message_of(document))
    assert message["response"]["experiment"] == shown["experiment"]
    assert message["response"]["recommendations"] == shown["recommendations"]
