"""`flask train`, on fake stages registered in the training chain."""

from __future__ import annotations

import types

import pytest

from recommender import create_app
from recommender.engines.base.outcome import PipelineOutcome
from recommender.services.update import UPDATE_LEASE
from recommender.store import leases
from tests.app_helpers import use_stages


@pytest.fixture
def stages(app, monkeypatch):
    """Fake stages as the training chain; each records (stage, seed, progress) in `calls`."""
    module = types.SimpleNamespace(calls=[])

    def fake(name: str, status: str, reason: str | None = None):
        def train(env, seed: int, progress: bool) -> PipelineOutcome:
            module.calls.append((name, seed, progress))
            if status == "crash":
                raise RuntimeError("out of memory")
            return PipelineOutcome(pipeline=name, status=status, reason=reason, model_version=3)

        return train

    module.fakes = {
        "ae": fake("ae", "promoted"),
        "ncf": fake("ncf", "rejected", "validation hr@10 0.10 <= popularity 0.20"),
        "rl": fake("rl", "crash"),
        "popularity": fake("popularity", "promoted"),
    }
    use_stages(monkeypatch, module.fakes)
    return module


def test_a_promoted_stage_exits_zero_with_the_given_seed_and_progress(cli, stages):
    result = cli("train", "popularity", "--seed", "7")

    assert result.exit_code == 0, result.output
    assert "popularity: promoted v3" in result.output
    assert stages.calls == [("popularity", 7, True)]
    assert leases.holder_of(UPDATE_LEASE) is None


def test_the_seed_defaults_to_the_training_seed_setting(store_overrides, monkeypatch):
    app = create_app("testing", **store_overrides, TRAINING_SEED=1234)
    with app.app_context():
        calls = []
        promoted = PipelineOutcome(pipeline="ae", status="promoted")
        use_stages(monkeypatch, {"ae": lambda env, seed, progress: calls.append(seed) or promoted})
        result = app.test_cli_runner().invoke(args=["train", "ae"])
    assert calls == [1234], result.output


def test_a_rejected_stage_exits_non_zero_and_says_why(cli, stages):
    result = cli("train", "ncf")

    assert result.exit_code == 1
    assert "ncf: rejected" in result.output
    assert "validation hr@10 0.10 <= popularity 0.20" in result.output
    assert "previous version keeps serving" in result.output


def test_a_crashing_stage_is_reported_as_failed(cli, stages):
    result = cli("train", "rl")

    assert result.exit_code == 1
    assert "rl: failed" in result.output and "out of memory" in result.output
    assert leases.holder_of(UPDATE_LEASE) is None


def test_a_stage_not_registered_yet_is_not_available(cli, stages):
    result = cli("train", "embedding")

    assert result.exit_code == 2
    assert "not available" in result.output
    assert stages.calls == []


def test_training_waits_for_a_running_update(cli, stages):
    assert leases.acquire(UPDATE_LEASE, "update-task-1", 60)

    result = cli("train", "popularity")

    assert result.exit_code == 1
    assert "update-task-1" in result.output
    assert stages.calls == []


def test_all_asks_first_and_runs_nothing_when_declined(cli, stages):
    result = cli("train", "all", input="n\n")

    assert result.exit_code == 1
    assert "replace" in result.output
    assert stages.calls == []


def test_all_runs_every_stage_in_order_and_fails_when_one_does(cli, stages):
    result = cli("train", "all", "--yes", "--seed", "5")

    assert [call[0] for call in stages.calls] == ["ae", "ncf", "rl", "popularity"]
    assert {call[1] for call in stages.calls} == {5}
    assert result.exit_code == 1
    for line in ("ae: promoted", "ncf: rejected", "rl: failed", "popularity: promoted"):
        assert line in result.output


def test_all_exits_zero_when_every_stage_is_promoted(cli, stages, monkeypatch):
    use_stages(monkeypatch, {"ae": stages.fakes["ae"], "popularity": stages.fakes["ae"]})

    result = cli("train", "all", input="y\n")

    assert result.exit_code == 0, result.output
    assert len(stages.calls) == 2


def test_every_command_explains_itself(cli):
    for command in ("all", "ae", "embedding", "ncf", "rl", "popularity"):
        result = cli("train", command, "--help")
        assert result.exit_code == 0
        assert "--seed" in result.output
        assert len(result.output.split("\n\n")[1].split()) >= 6, command
