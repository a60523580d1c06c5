"""The training framework: step bookkeeping, promotion rule, rejection, failure, seeds, report."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from prometheus_client import REGISTRY
from torch import nn

from recommender.engines.base.device import training_device
from recommender.engines.base.pipeline import (
    STEPS,
    Artifact,
    DataValidationError,
    ModelValidationError,
    Pipeline,
    RunContext,
)
from recommender.engines.spec import TrainingEnv
from recommender.model_store import versions as model_store
from recommender.models.ops import ModelVersion, PipelineMetadata
from recommender.settings import Settings
from recommender.store import get_db
from tests.app_helpers import env


class Toy(Pipeline[np.ndarray, torch.Tensor, nn.Linear]):
    """A linear regression on seeded noise; knobs make each step misbehave on demand."""

    name = "Toy"

    def __init__(self, rows=32, max_loss=float("inf"), crash_in=None, requires=()):
        self.rows, self.max_loss, self.crash_in = rows, max_loss, crash_in
        self.requires = requires

    def _maybe_crash(self, step: str) -> None:
        if self.crash_in == step:
            raise RuntimeError(f"boom in {step}")

    def extract(self, ctx: RunContext) -> np.ndarray:
        self._maybe_crash("extract")
        ctx.details["rows"] = self.rows
        return ctx.rng.normal(size=(self.rows, 4)).astype(np.float32)

    def validate_data(self, raw, ctx) -> None:
        if len(raw) < 2:
            raise DataValidationError(f"{len(raw)} rows (at least 2 needed)")

    def prepare(self, raw, ctx) -> torch.Tensor:
        return torch.from_numpy(raw)

    def train(self, data, ctx) -> nn.Linear:
        self._maybe_crash("train")
        model = nn.Linear(3, 1)
        optimiser = torch.optim.SGD(model.parameters(), lr=0.05)
        for epoch in range(5):
            order = torch.randperm(len(data), generator=ctx.torch_generator())
            loss = ((model(data[order, :3]).squeeze(1) - data[order, 3]) ** 2).mean()
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            ctx.report.scalar("toy/train_loss", loss.item(), epoch)
        return model

    def evaluate(self, model, data, ctx) -> dict:
        with torch.no_grad():
            return {"loss": ((model(data[:, :3]).squeeze(1) - data[:, 3]) ** 2).mean().item()}

    def validate_model(self, model, metrics, ctx) -> None:
        self._maybe_crash("validate_model")
        if metrics["loss"] > self.max_loss:
            raise ModelValidationError(f"loss {metrics['loss']:.3f} above {self.max_loss}")

    def package(self, model, metrics, ctx) -> Artifact:
        return Artifact("toy", model.state_dict(), {"inputs": 3})


def last_metadata() -> PipelineMetadata:
    return PipelineMetadata.objects(pipeline="Toy").order_by("-start_time", "-id").first()


def test_promoted_run_records_every_step_and_goes_live(app):
    outcome = Toy().run(env(), seed=3)

    assert outcome.status == "promoted" and outcome.model_version == 1
    live = model_store.live_version("toy")
    assert live.version == 1 and live.metrics["loss"] == pytest.approx(outcome.metrics["loss"])
    stored = model_store.load("toy")
    assert set(stored.tensors) == {"weight", "bias"} and stored.config == {"inputs": 3}
    metadata = last_metadata()
    assert (metadata.status, metadata.seed, metadata.model_version) == ("promoted", 3, 1)
    assert [s.name for s in metadata.steps] == list(STEPS)
    assert all(s.status == "completed" and s.duration_s >= 0 for s in metadata.steps)
    assert metadata.steps[0].details == {"rows": 32}
    assert metadata.steps[-1].details == {"candidates": {"toy": 1}}
    assert metadata.end_time >= metadata.start_time
    assert metadata.metrics == {"loss": pytest.approx(outcome.metrics["loss"])}
    # The report's series, as its loss-curve PNG draws them: one point per epoch.
    [(tag, points)] = metadata.curves.items()
    assert tag == "toy/train_loss" and [epoch for epoch, _ in points] == [0, 1, 2, 3, 4]
    assert all(loss > 0 for _, loss in points)


def test_model_validation_failure_rejects_candidate_and_keeps_previous_live(app):
    assert Toy().run(env(), seed=1).status == "promoted"

    outcome = Toy(max_loss=-1.0).run(env(), seed=2)

    assert outcome.status == "rejected" and "above -1.0" in outcome.reason
    assert outcome.model_version is None
    assert model_store.live_version("toy").version == 1
    rejected = ModelVersion.objects.get(name="toy", version=2)
    assert rejected.status == model_store.REJECTED and rejected.file_id is None
    assert "above -1.0" in rejected.metrics["rejection_reason"]
    metadata = last_metadata()
    assert (metadata.status, metadata.reason) == ("rejected", outcome.reason)
    assert metadata.steps[-1].status == "rejected"
    assert metadata.metrics["loss"] == pytest.approx(rejected.metrics["loss"])  # kept though
    assert model_store.load("toy").version == 1


def test_data_validation_failure_writes_no_model(app):
    outcome = Toy(rows=1).run(env())

    assert outcome.status == "rejected" and outcome.reason == "1 rows (at least 2 needed)"
    assert ModelVersion.objects(name="toy").count() == 0
    steps = {s.name: s.status for s in last_metadata().steps}
    assert steps["validate_data"] == "rejected" and steps["prepare"] == "pending"


@pytest.mark.parametrize("step", ["extract", "train", "validate_model"])
def test_crash_is_recorded_as_failure_never_a_live_model(app, step):
    outcome = Toy(crash_in=step).run(env())

    assert outcome.status == "failed" and f"boom in {step}" in outcome.reason
    assert model_store.live_version("toy") is None
    # A candidate saved before the crash is rejected: its weights are gone.
    assert all(m.status == "rejected" and m.file_id is None for m in ModelVersion.objects)
    metadata = last_metadata()
    assert metadata.status == "failed" and metadata.end_time is not None
    failed = next(s for s in metadata.steps if s.name == step)
    assert failed.status == "failed" and "boom" in failed.details["error"]


def test_missing_dependency_skips_the_run(app):
    outcome = Toy(requires=("embeddings",)).run(env())

    assert outcome.status == "skipped" and "embeddings" in outcome.reason
    assert outcome.ok and ModelVersion.objects.count() == 0


def test_same_seed_same_weights_other_seed_other_weights(app):
    weights = []
    for seed in (7, 7, 8):
        version = Toy().run(env(), seed=seed).model_version
        weights.append(model_store.load("toy", version).tensors["weight"])

    assert torch.equal(weights[0], weights[1])
    assert not torch.equal(weights[0], weights[2])


def test_training_duration_observed_per_status(app):
    def count(status: str) -> float:
        value = REGISTRY.get_sample_value(
            "recommender_training_seconds_count", {"pipeline": "Toy", "status": status}
        )
        return value or 0.0

    before = count("rejected")
    Toy(rows=0).run(env())
    assert count("rejected") == before + 1


def test_report_written_when_runs_dir_set(app, tmp_path):
    settings = Settings(FLASK_ENV="testing", TRAINING_RUNS_DIR=str(tmp_path))

    outcome = Toy().run(TrainingEnv(settings))

    report = tmp_path / "Toy"
    (run_dir,) = report.iterdir()
    assert outcome.metrics["report"] == str(run_dir)
    assert (run_dir / "loss_curves.png").stat().st_size > 0
    assert any(p.name.startswith("events.out.tfevents") for p in run_dir.iterdir())


def test_no_report_while_testing_by_default(app):
    assert "report" not in Toy().run(env()).metrics


def test_training_device_falls_back_to_cpu_without_a_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)

    assert training_device("cuda") == torch.device("cpu")
    assert training_device("CPU") == torch.device("cpu")
    assert training_device(None) == torch.device("cpu")


def test_training_device_uses_cuda_when_present(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)

    assert training_device("cuda") == torch.device("cuda")
    assert training_device("cuda:1") == torch.device("cuda:1")


def test_failed_candidate_record_leaves_no_orphaned_weights(app, monkeypatch):
    def refuse(self, *args, **kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(ModelVersion, "save", refuse)

    with pytest.raises(RuntimeError):
        model_store.save_candidate("toy", {"weight": torch.ones(2)})

    assert get_db()["fs.files"].count_documents({}) == 0
