"""The overview page: health, engines and models, the last update, traffic; empty states on a
new installation; the health checks' result reused while fresh."""

from __future__ import annotations

import datetime as dt
import threading
import time

from recommender.models.ops import UpdateTask, utcnow
from recommender.services.bookkeeping import writer
from recommender.services.dashboard import overview as overview_service
from recommender.services.dashboard.overview import HealthCache
from tests.api.helpers import body, load


def page(client) -> str:
    answer = client.get("/dashboard/")
    assert answer.status_code == 200
    return answer.get_data(as_text=True)


def test_a_new_installation_shows_what_to_do_not_errors(client):
    shown = page(client)
    for empty in (
        "No model is trained yet",
        "No update yet: the Marketplace sends its catalogue to POST /update",
        "No recommendation served in the last day.",
        "No user action received in the last day.",
    ):
        assert empty in shown
    assert "Something is DOWN" in shown  # too few users and services, no databus here
    assert "Too few items" in shown


def test_the_last_update_shows_its_counts_dropped_references_and_outcomes(client):
    an_hour_ago = utcnow() - dt.timedelta(hours=1)
    UpdateTask(task_id="old", status="succeeded", created_at=an_hour_ago).save()
    UpdateTask(
        task_id="new",
        status="failed",
        reason="NCF: <script>alert(1)</script>",
        report={
            "counts": {"services": 30, "users": 60},
            "dropped_references": {"services.providers": 4},
            "training": [
                {"pipeline": "NCF", "status": "failed", "reason": "<b>boom</b>"},
                {"pipeline": "Popularity", "status": "promoted", "model_version": 3},
            ],
        },
        created_at=utcnow(),
    ).save()
    shown = page(client)
    assert "<code>new</code>" in shown and "<code>old</code>" not in shown
    assert "<dt>services</dt><dd>30</dd>" in shown and "<dt>users</dt><dd>60</dd>" in shown
    assert '<th scope="row">services.providers</th><td>4</td>' in shown
    assert "&lt;b&gt;boom&lt;/b&gt;" in shown and "<b>boom</b>" not in shown  # escaped
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in shown and "<script>" not in shown
    assert '<th scope="row">Popularity</th><td><span class="status status-promoted">' in shown


def test_served_engines_show_their_live_versions_and_the_champion_when_recorded(
    client, monkeypatch
):
    load()
    shown = page(client)
    assert '<th scope="row">Random</th>' in shown and "Champion" not in shown
    training = overview_service.training()
    champion = {"version": 2, "engine": "Random", "model": "random", "gate_ndcg@10": 0.4}
    monkeypatch.setattr(overview_service, "training", lambda: {**training, "champion": champion})
    shown = page(client)
    assert "Champion (answers for Auto): <strong>Random</strong>" in shown
    assert '<th scope="row">Random (champion)</th>' in shown
    assert "<dt>gate_ndcg@10</dt><dd>0.4</dd>" in shown


def test_traffic_shows_answers_per_engine_and_panel_and_actions_per_source(client):
    load()
    engine = client.post("/recommendations", json=body(client_id="user_dashboard")).json[
        "engine_version"
    ]
    assert client.post("/user_actions", json={"nope": 1}).status_code == 400
    writer.flush()
    shown = page(client)
    assert f'<th scope="row">{engine}</th><td>v1</td><td>1</td><td>1</td>' in shown
    assert '<th scope="row">http</th><td>0 / 0</td><td>0 / 0</td><td>1 / 1</td>' in shown


class CountedChecks:
    """`health()` stand-in: counts calls, each answering a numbered tree."""

    def __init__(self):
        self.calls = 0
        self.release = threading.Event()
        self.release.set()

    def __call__(self):
        self.release.wait(5)
        self.calls += 1
        return {"status": "UP", "call": {"status": "UP", "n": self.calls}, "training": {}}, 200


def test_fresh_checks_are_reused_and_stale_ones_refreshed_in_the_background(app, monkeypatch):
    checks = CountedChecks()
    monkeypatch.setattr(overview_service, "health", checks)
    cache = HealthCache(app, max_age_s=60)

    first = cache.get()  # nothing yet: checked now
    assert checks.calls == 1 and "training" not in first.tree
    assert cache.get() is first and checks.calls == 1  # fresh: reused

    cache.max_age_s = 0
    checks.release.clear()  # the refresh waits: the page must not
    time.sleep(0.01)
    assert cache.get() is first  # stale: shown, refresh started
    assert cache.get() is first  # one refresh at a time: not another
    cache.max_age_s = 60
    checks.release.set()
    deadline = time.monotonic() + 5
    while cache.get() is first and time.monotonic() < deadline:
        time.sleep(0.01)
    assert cache.get().tree["call"]["n"] == 2 and checks.calls == 2
