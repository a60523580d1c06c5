"""The update lease: renewed while an update runs, released whatever happens, and an update
that lost it stops before its next stage."""

from __future__ import annotations

import time

import pytest

from recommender.engines.base.outcome import PipelineOutcome
from recommender.models import UpdateTask
from recommender.services import update
from recommender.services.update import UPDATE_LEASE
from recommender.store import leases
from tests.app_helpers import change_settings, use_stages
from tests.marketplace_dump import marketplace_dump


def test_a_long_stage_keeps_the_lease_renewed_and_it_is_released_after(client, monkeypatch):
    change_settings(UPDATE_LEASE_TTL=0.2)  # renewed every 0.05 s
    holders = []

    def long_stage(env, seed, progress):
        for _ in range(6):  # three TTLs
            time.sleep(0.1)
            holders.append(leases.holder_of(UPDATE_LEASE))
        return PipelineOutcome(pipeline="long", status="promoted")

    use_stages(monkeypatch, {"long": long_stage})
    task = client.post("/update", json=marketplace_dump()).get_json()
    assert holders == [task["task_id"]] * 6
    assert client.get(f"/update/{task['task_id']}").get_json()["status"] == "succeeded"
    assert leases.holder_of(UPDATE_LEASE) is None


def test_an_update_that_lost_its_lease_stops_before_the_next_stage(client, monkeypatch):
    """The renewal's result is checked: when another holder has the lease (ours expired, e.g.
    the worker stalled), the update stops and says why, and trains nothing more."""
    change_settings(UPDATE_LEASE_TTL=0.2)
    ran = []

    def stalled(env, seed, progress):
        ran.append("stalled")
        leases.release(UPDATE_LEASE, UpdateTask.objects.get().task_id)  # as if it expired
        assert leases.acquire(UPDATE_LEASE, "the next update", 60)
        time.sleep(0.2)  # a renewal happens meanwhile, and finds the lease taken
        return PipelineOutcome(pipeline="stalled", status="promoted")

    def later(env, seed, progress):
        ran.append("later")
        return PipelineOutcome(pipeline="later", status="promoted")

    use_stages(monkeypatch, {"stalled": stalled, "later": later})
    task = client.post("/update", json=marketplace_dump()).get_json()
    status = client.get(f"/update/{task['task_id']}").get_json()
    assert ran == ["stalled"]
    assert status["status"] == "failed"
    assert status["reason"] == "the update lease was lost to the next update"
    assert leases.holder_of(UPDATE_LEASE) == "the next update"  # not released: not ours


def test_the_lease_is_released_when_the_update_raises(client, monkeypatch):
    from recommender import tasks

    def broken(*args, **kwargs):
        raise RuntimeError("a bug outside any stage")

    monkeypatch.setattr(update, "_load", lambda task: True)
    monkeypatch.setattr(update, "train_chain", broken)
    UpdateTask(task_id="t-1", report={"seed": 1}).save()
    with pytest.raises(RuntimeError, match="a bug outside any stage"):
        tasks.update.apply(args=["t-1"], throw=True)
    assert leases.holder_of(UPDATE_LEASE) is None
