"""The experiments page: each experiment's variants and decision, an empty state, and the stop
button (a POST with the form's CSRF token)."""

from __future__ import annotations

from recommender.models.experiments import Experiment
from tests.api.helpers import load
from tests.dashboard.conftest import TOKEN, csrf_of, sign_in
from tests.experiments.helpers import definition, serve


def test_no_experiment_says_how_to_start_one(client):
    shown = client.get("/dashboard/experiments").get_data(as_text=True)
    assert "No experiment yet" in shown and "POST /experiments" in shown


def test_an_experiment_is_shown_and_stopped_with_its_button(client):
    load()
    created = client.post("/experiments", json=definition()).get_json()
    serve(client)
    page = client.get("/dashboard/experiments").get_data(as_text=True)
    assert created["name"] in page and "RUNNING" in page
    assert "No results yet" in page  # the worker has not counted anything yet

    stopped = client.post(
        f"/dashboard/experiments/{created['id']}/stop", data={"csrf_token": csrf_of(page)}
    )
    assert stopped.status_code == 302
    assert Experiment.objects.get(id=created["id"]).status == "stopped"
    after = client.get("/dashboard/experiments").get_data(as_text=True)
    assert "STOPPED" in after and "Stop this experiment" not in after


def test_the_stop_button_needs_the_forms_token_and_the_sign_in(token_app):
    client = token_app.test_client()
    load()
    created = client.post(
        "/experiments", json=definition(), headers={"Authorization": f"Bearer {TOKEN}"}
    ).get_json()
    path = f"/dashboard/experiments/{created['id']}/stop"
    assert client.post(path).status_code == 400  # not signed in, no form: refused
    sign_in(client)
    assert client.post(path, data={"csrf_token": "forged"}).status_code == 400
    assert Experiment.objects.get(id=created["id"]).status == "running"
    page = client.get("/dashboard/experiments").get_data(as_text=True)
    assert client.post(path, data={"csrf_token": csrf_of(page)}).status_code == 302
    assert Experiment.objects.get(id=created["id"]).status == "stopped"


def test_an_unknown_experiment_is_a_404_page(client):
    load()
    client.post("/experiments", json=definition())
    page = client.get("/dashboard/experiments").get_data(as_text=True)
    missing = client.post(
        "/dashboard/experiments/6b128f9e1e479f0647433cd6/stop",
        data={"csrf_token": csrf_of(page)},
    )
    assert missing.status_code == 404
