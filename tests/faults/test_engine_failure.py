"""An engine that raises: the next engine in the fallback order answers, and the failure is
counted by engine in Prometheus."""

from __future__ import annotations

from prometheus_client import REGISTRY

from tests.api.helpers import body
from tests.app_helpers import engine
from tests.faults.helpers import serving


def failures(name: str) -> float:
    return REGISTRY.get_sample_value("recommender_engine_failures_total", {"engine": name}) or 0


def test_the_next_engine_answers_and_the_failure_is_counted(client, monkeypatch):
    assert serving(client)["engine_version"] == "Popularity"

    def broken(*args, **kwargs):
        raise RuntimeError("a bug in the engine")

    monkeypatch.setattr(engine("Popularity"), "answer", broken)
    before = failures("Popularity")
    for _ in range(3):
        response = client.post("/recommendations", json=body(engine_version="Popularity"))
        assert response.status_code == 200
        answer = response.get_json()
        assert answer["engine_version"] != "Popularity"
        assert len(answer["recommendations"]) == 3
    assert failures("Popularity") == before + 3
    scraped = client.get("/metrics").get_data(as_text=True)
    assert 'recommender_engine_failures_total{engine="Popularity"}' in scraped
