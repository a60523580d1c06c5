"""A seeded experiment end to end through the API: visitors are served, one variant's visitors
click more often, and the results count exactly what happened, split the traffic as
configured, keep each visitor in one variant and find the better variant."""

from __future__ import annotations

import uuid
from collections import Counter

import numpy as np
from scipy import stats

from recommender.engines.popularity.pipeline import train as train_popularity
from recommender.models.experiments import Experiment
from recommender.services.bookkeeping import writer
from recommender.services.experiments import results
from tests.api.helpers import load
from tests.app_helpers import env
from tests.experiments.helpers import SETTLED, action, definition, serve, store

VISITORS = 2400
CLICK = {"control": 0.10, "treatment": 0.20}  # the simulated visitors' behaviour
ORDER_AFTER_CLICK = 0.3


def test_a_seeded_experiment_is_counted_exactly_and_its_better_variant_found(client):
    load()
    train_popularity(env())
    experiment = client.post("/experiments", json=definition(panels=["v1"])).get_json()
    rng = np.random.default_rng(7)
    served, clicked, ordered, actions = Counter(), Counter(), Counter(), []
    variant_of: dict[str, str] = {}
    for _ in range(VISITORS):
        visitor = str(uuid.UUID(int=int(rng.integers(2**63))))
        for _visit in range(1 + int(rng.random() < 0.25)):  # a quarter come back
            shown = serve(client, visitor)
            variant = shown["experiment"]["variant"]
            assert variant_of.setdefault(visitor, variant) == variant  # stable
            served[variant] += 1
            if rng.random() < CLICK[variant]:
                landing = str(uuid.uuid4())
                first = shown["recommendations"][0]
                actions.append(action(visitor, shown["visit"], landing, first))
                clicked[variant] += 1
                if rng.random() < ORDER_AFTER_CLICK:
                    actions.append(action(visitor, landing, str(uuid.uuid4()), order=True))
                    ordered[variant] += 1
    store(*actions)
    writer.flush()

    # What the periodic task does, with nothing left in flight (everything was just flushed).
    results.refresh(Experiment.objects.get(id=experiment["id"]), settle=SETTLED)
    report = client.get(f"/experiments/{experiment['id']}").get_json()["results"]
    variants = {v["name"]: v for v in report["variants"]}
    for name in CLICK:
        assert variants[name]["impressions"] == served[name]
        assert variants[name]["clicks"] == clicked[name]
        assert variants[name]["orders"] == ordered[name]
    visitors = Counter(variant_of.values())
    # The split of visitors follows the shares: within the 99.9% binomial band.
    low, high = stats.binom.ppf([0.0005, 0.9995], VISITORS, 0.5)
    assert low <= visitors["control"] <= high
    assert not report["sample_ratio"]["mismatch"]
    [comparison] = report["comparison"]
    assert comparison["variant"] == "treatment" and comparison["against"] == "control"
    assert comparison["decision"] == "treatment better"
    true_lift = CLICK["treatment"] / CLICK["control"] - 1
    assert comparison["lift_ci"][0] < true_lift < comparison["lift_ci"][1]
