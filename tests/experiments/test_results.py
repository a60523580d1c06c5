"""Results: what counts as an impression, a click and an order, counted once, incrementally."""

from __future__ import annotations

import uuid

import pytest

from recommender.engines.popularity.pipeline import train as train_popularity
from recommender.models.experiments import Experiment
from recommender.services.bookkeeping import writer
from recommender.services.experiments import results
from recommender.services.experiments.assignment import RunningExperiment
from recommender.store import leases
from recommender.tasks import experiment_results
from tests.api.helpers import load
from tests.app_helpers import env
from tests.experiments.helpers import SETTLED, action, definition, serve, store


@pytest.fixture
def experiment(client) -> Experiment:
    load()
    train_popularity(env())
    created = client.post("/experiments", json=definition()).get_json()
    return Experiment.objects.get(id=created["id"])


def refreshed(experiment: Experiment) -> dict:
    writer.flush()
    results.refresh(experiment, settle=SETTLED)
    return {v["name"]: v for v in experiment.reload().results["variants"]}


def visit_of(client, variant: str, experiment: Experiment, **overrides) -> dict:
    """A served panel of a fresh visitor who lands in `variant` (picked before serving)."""
    split = RunningExperiment.of(experiment)
    visitor = next(v for v in (str(uuid.uuid4()) for _ in range(100)) if _in(split, v, variant))
    shown = serve(client, visitor, **overrides)
    assert shown["experiment"]["variant"] == variant
    return shown


def _in(split: RunningExperiment, visitor: str, variant: str) -> bool:
    return split.assign(visitor).variant == variant


def test_clicks_and_orders_are_counted_by_the_rules(client, experiment):
    control = visit_of(client, "control", experiment)
    treatment = visit_of(client, "treatment", experiment)
    other = visit_of(client, "treatment", experiment)
    c, t, o = control["recommendations"], treatment["recommendations"], other["recommendations"]
    not_shown = next(s for s in range(1, 100) if s not in t)
    after_click, after_step = str(uuid.uuid4()), str(uuid.uuid4())
    store(
        action(control["visitor"], control["visit"], str(uuid.uuid4()), c[0]),  # counts
        action(treatment["visitor"], treatment["visit"], after_click, t[0]),  # counts
        action(treatment["visitor"], treatment["visit"], str(uuid.uuid4()), t[1]),  # counts
        action(treatment["visitor"], treatment["visit"], str(uuid.uuid4()), not_shown),  # no
        action(treatment["visitor"], str(uuid.uuid4()), str(uuid.uuid4()), t[0]),  # other visit
        action(treatment["visitor"], treatment["visit"], str(uuid.uuid4()), t[0], root_type="x"),
        # The path after the first treatment click, ending in an order: one order.
        action(treatment["visitor"], after_click, after_step),
        action(treatment["visitor"], after_step, str(uuid.uuid4()), order=True),
        # A click that orders at once: a click and an order.
        action(other["visitor"], other["visit"], str(uuid.uuid4()), o[0], order=True),
    )

    variants = refreshed(experiment)

    assert variants["control"] | {"ctr_ci": None} == {
        "name": "control",
        "engine": "Random",
        "share": 0.5,
        "impressions": 1,
        "clicks": 1,
        "ctr": 1.0,
        "ctr_ci": None,
        "orders": 0,
        "order_rate": 0.0,
    }
    treated = variants["treatment"]
    assert (treated["impressions"], treated["clicks"], treated["orders"]) == (2, 3, 2)
    assert treated["ctr"] == pytest.approx(1.5) and treated["order_rate"] == pytest.approx(1.0)
    # Per impression: 2 clicks and 1 click -> the sum of squares 5.
    assert experiment.reload().tallies["treatment"].clicks_sq == 5


def test_a_panel_shown_twice_in_a_visit_counts_a_click_once_for_the_latest(client, experiment):
    first = visit_of(client, "control", experiment, timestamp="2024-02-21T10:00:00Z")
    again = serve(
        client,
        first["visitor"],
        visit_id=first["visit"],
        timestamp="2024-02-21T10:05:00Z",
        candidates=first["recommendations"],
    )
    assert again["experiment"]["variant"] == "control"
    click = action(first["visitor"], first["visit"], str(uuid.uuid4()), first["recommendations"][0])
    store(click)

    variants = refreshed(experiment)

    assert (variants["control"]["impressions"], variants["control"]["clicks"]) == (2, 1)
    counts = [doc.experiment_clicks for doc in _recommendations(experiment)]
    assert sorted(counts) == [0, 1]


def test_each_refresh_counts_only_what_arrived_since_the_last(client, experiment):
    shown = visit_of(client, "control", experiment)
    store(action(shown["visitor"], shown["visit"], str(uuid.uuid4()), shown["recommendations"][0]))
    assert refreshed(experiment)["control"]["clicks"] == 1
    assert refreshed(experiment)["control"]["clicks"] == 1  # nothing new: nothing added

    again = visit_of(client, "control", experiment)
    store(action(again["visitor"], again["visit"], str(uuid.uuid4()), again["recommendations"][1]))
    variants = refreshed(experiment)
    assert (variants["control"]["impressions"], variants["control"]["clicks"]) == (2, 2)


def test_a_refresh_already_running_is_not_doubled(client, experiment):
    shown = visit_of(client, "control", experiment)
    writer.flush()
    assert leases.acquire(f"experiment:{experiment.id}", "another refresh", 60)
    results.refresh(experiment, settle=SETTLED)
    assert experiment.reload().tallies == {}  # left to the refresh that holds the lease
    leases.release(f"experiment:{experiment.id}", "another refresh")
    assert refreshed(experiment)["control"]["impressions"] == 1
    assert shown["experiment"]["variant"] == "control"


def test_the_periodic_task_refreshes_running_experiments_and_a_stopped_one_once(
    client, experiment, monkeypatch
):
    monkeypatch.setattr(results, "SETTLE", SETTLED)
    visit_of(client, "treatment", experiment)
    writer.flush()
    assert experiment_results.delay().get() == 1
    assert experiment.reload().results["variants"][1]["impressions"] == 1
    client.post(f"/experiments/{experiment.id}/stop")
    # Stopped: refreshed until what arrived up to its stop has settled, then left alone.
    assert experiment_results.delay().get() == 1
    assert experiment_results.delay().get() == 0


def _recommendations(experiment: Experiment):
    from recommender.models.activity import Recommendation

    return Recommendation.objects(experiment=str(experiment.id))
