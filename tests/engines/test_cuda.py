"""With a GPU and TRAINING_DEVICE=cuda: every stage trains on it, and serving (on cpu) reads what
it stored. Skipped where no CUDA device exists (CI); run on a GPU machine to check that path."""

from __future__ import annotations

import pytest
import torch

from recommender.models.ops import PipelineMetadata
from tests.api.helpers import body
from tests.app_helpers import change_settings
from tests.worlds import build_trained_world

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


def test_every_stage_trains_on_cuda_and_its_models_serve(app, client):
    change_settings(TRAINING_DEVICE="cuda")
    torch.cuda.reset_peak_memory_stats()

    world = build_trained_world(users=400, services=150, seed=5)  # every stage, ungated

    assert torch.cuda.max_memory_allocated() > 0
    assert recorded_devices() == {"cuda"}
    user = next(u["id"] for u in world.dump["users"] if u["accessed_services"])
    for engine in ("NCF", "NCFRanking", "RL"):
        answer = client.post(
            "/recommendations",
            json=body(user_id=user, engine_version=engine, client_id="search_service"),
        )
        assert answer.status_code == 200, answer.json
        assert answer.json["engine_version"] == engine
        assert answer.json["recommendations"]
