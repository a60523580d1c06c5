"""With a GPU and TRAINING_DEVICE=cuda: every stage trains on it, and serving (on cpu) reads what
it stored. Skipped where no CUDA device exists (CI); run on a GPU machine to check that path."""

from __future__ import annotations

import pytest
import torch

from recommender.models.ops import PipelineMetadata
from recommender.services.seeding import seed_database
from recommender.services.update import train_chain
from tests.api.helpers import body

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def recorded_devices() -> set[str]:
    """Every `device` a training step recorded (NCF at the top of its details, AE per entity)."""
    found = set()
    for run in PipelineMetadata.objects:
        for step in run.steps:
            details = step.details or {}
            for part in (details, *details.values()):
                if isinstance(part, dict) and "device" in part:
                    found.add(part["device"])
    return found


def test_the_training_chain_runs_on_cuda_and_its_models_serve(app, client):
    app.config.update(TRAINING_DEVICE="cuda", RL_SYNTHETIC_SESSIONS=2000, RL_EPOCHS=2)
    seed_database(users=400, services=150, sessions=300, seed=5)
    torch.cuda.reset_peak_memory_stats()

    outcomes = train_chain(None, seed=5, progress=False)

    status = {o.pipeline: o.status for o in outcomes}
    # RL may lose its quality gate on so little data; it must not crash.
    assert status["RL"] in ("promoted", "rejected"), outcomes
    assert {status[name] for name in status if name != "RL"} == {"promoted"}, outcomes
    assert torch.cuda.max_memory_allocated() > 0
    assert recorded_devices() == {"cuda"}
    served = ["NCF", "NCFRanking"] + (["RL"] if status["RL"] == "promoted" else [])
    for engine in served:
        answer = client.post(
            "/recommendations",
            json=body(user_id=1, engine_version=engine, client_id="search_service"),
        )
        assert answer.status_code == 200, answer.json
        assert answer.json["engine_version"] == engine
        assert answer.json["recommendations"]
