"""GET /metrics (Prometheus text) and the engine part of GET /health."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import textwrap

from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from recommender.engines.popularity.pipeline import train as train_popularity
from recommender.models.ops import PipelineMetadata
from recommender.services.bookkeeping import writer
from recommender.services.runtime import runtime
from tests.api.helpers import body, load
from tests.app_helpers import change_settings, env


def scrape(client) -> dict[tuple[str, tuple], float]:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.content_type.startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.get_data(as_text=True))
        for sample in family.samples
    }


def sample(name: str, **labels) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_requests_and_engines_are_counted_and_timed(client):
    load()
    request = {"endpoint": "/recommendations", "method": "POST", "status": "200"}
    before = sample("recommender_http_requests_total", **request)
    served = sample("recommender_recommendations_served_total", engine="Random", panel_id="v2")
    timed = sample("recommender_engine_seconds_count", engine="Random")
    latency = sample("recommender_http_request_seconds_count", endpoint="/recommendations")
    for _ in range(3):
        assert client.post("/recommendations", json=body(panel_id="v2")).status_code == 200
    assert client.post("/recommendations", json=body(unique_id="x")).status_code == 400
    writer.flush()

    metrics = scrape(client)
    key = ("recommender_http_requests_total", tuple(sorted(request.items())))
    assert metrics[key] == before + 3
    bad = {**request, "status": "400"}
    assert ("recommender_http_requests_total", tuple(sorted(bad.items()))) in metrics
    assert sample("recommender_http_request_seconds_count", endpoint="/recommendations") == (
        latency + 4
    )
    assert (
        sample("recommender_recommendations_served_total", engine="Random", panel_id="v2")
        == served + 3
    )
    assert sample("recommender_engine_seconds_count", engine="Random") == timed + 3


def test_unknown_paths_share_one_label(client):
    client.get("/no/such/path")
    client.get("/another/one")
    metrics = scrape(client)
    endpoints = {dict(labels).get("endpoint") for name, labels in metrics}
    assert "<unmatched>" in endpoints
    assert not {"/no/such/path", "/another/one"} & endpoints


def test_live_model_version_per_engine(client):
    load()
    train_popularity(env())
    train_popularity(env())
    assert scrape(client)[("recommender_model_version", (("engine", "Popularity"),))] == 2.0


def test_health_has_one_check_per_registered_engine(client):
    load()
    engines = client.get("/health").get_json()["recommender_engines"]
    assert set(runtime().engines.served) <= set(engines)
    assert engines["Random"] == {"status": "UP"}
    assert engines["RandomRanking"] == {"status": "UP"}
    assert engines["Popularity"] == {"status": "DOWN", "error": "Missing model in db"}
    assert engines["status"] == "DOWN"

    train_popularity(env())
    engines = client.get("/health").get_json()["recommender_engines"]
    assert engines["Popularity"] == {"status": "UP"}


def test_an_engine_its_gate_rejected_is_not_promoted_not_down(client):
    """A rejected model leaves the engine NOT_PROMOTED with the gate's reason, which keeps its
    parent UP (the next engine answers, as configured); a failed run leaves it DOWN."""
    from recommender.services import health

    load()
    reason = "too few orders to count (at least 10 needed)"
    PipelineMetadata(pipeline="Popularity", status="rejected", reason=reason).save()
    engines = client.get("/health").get_json()["recommender_engines"]
    assert engines["Popularity"] == {"status": "NOT_PROMOTED", "reason": reason}
    assert health.branch(Popularity=engines["Popularity"], Random=engines["Random"]) == {
        "status": "UP",
        "Popularity": {"status": "NOT_PROMOTED", "reason": reason},
        "Random": {"status": "UP"},
    }

    later = PipelineMetadata(pipeline="Popularity", status="failed", reason="boom")
    later.start_time += dt.timedelta(seconds=1)
    later.save()
    engines = client.get("/health").get_json()["recommender_engines"]
    assert engines["Popularity"] == {"status": "DOWN", "error": "Missing model in db"}
    assert health.branch(Popularity=engines["Popularity"])["status"] == "DOWN"


def test_multiprocess_mode_reports_every_worker(tmp_path):
    """With PROMETHEUS_MULTIPROC_DIR (gunicorn workers), /metrics adds up all processes."""
    script = textwrap.dedent(
        """
        import os
        from recommender import create_app

        app = create_app("testing", MONGODB_HOST="mongomock", RS_API_TOKEN=None)
        client = app.test_client()
        pid = os.fork()  # a second worker, as gunicorn makes them
        client.get("/health/unknown")
        if pid == 0:
            os._exit(0)
        os.waitpid(pid, 0)
        print(client.get("/metrics").get_data(as_text=True))
        """
    )
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path), "PYTHONPATH": os.getcwd()}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr
    line = 'recommender_http_requests_total{endpoint="<unmatched>",method="GET",status="404"}'
    assert f"{line} 2.0" in done.stdout


def test_a_disabled_databus_is_reported_disabled_and_never_tried(client, monkeypatch):
    from recommender.services import health

    def tried(_settings):
        raise AssertionError("the broker was tried")

    monkeypatch.setattr(health, "check", tried)
    change_settings(RS_DATABUS_ENABLED=False)
    assert client.get("/health").get_json()["databus"] == {"status": "DISABLED"}
    # DISABLED is not DOWN: it leaves its parent (and so the answer's status code) UP.
    assert health.branch(database={"status": "UP"}, databus=health.databus())["status"] == "UP"
