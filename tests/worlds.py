"""A small synthetic marketplace with every default engine trained and live, built once.

Quality gates are skipped (each pipeline's `validate_model`, or the promotion settings loosened
for the personalised engines' shared gate): tests that serve need live models, not good ones;
tests of the gates train their own. Build it in a module-scoped fixture with
`build_trained_world()` inside an app context and hand each test a copy (tests/snapshots.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from recommender.engines.autoencoders.model import TrainConfig as AETrainConfig
from recommender.engines.autoencoders.pipeline import AEConfig, AEPipeline, EmbeddingPipeline
from recommender.engines.ncf.pipeline import NCFConfig, NCFPipeline
from recommender.engines.ncf.training import TrainConfig as NCFTrainConfig
from recommender.engines.popularity.pipeline import PopularityPipeline
from recommender.engines.rl.pipeline import RLConfig, RLPipeline
from recommender.engines.rl.training import AgentConfig
from recommender.services.update import train_stage
from recommender.synthetic import generate_marketplace, generate_sessions
from recommender.synthetic.writer import write_marketplace, write_sessions
from tests import snapshots
from tests.app_helpers import change_settings, env

AE_FAST = AEConfig(train=AETrainConfig(max_epochs=10, patience=3))
NCF_FAST = NCFConfig(
    mf_dim=8,
    mlp_dim=8,
    mlp_layers=(16, 8),
    content_layers=(16, 8),
    train=NCFTrainConfig(max_epochs=5, patience=2, batch_size=256, lr=0.01),
)
RL_FAST = RLConfig(
    min_real_sarses=10**9,
    synthetic_sessions=400,
    agent=AgentConfig(epochs=2, batch_size=64),
    grid=({"imitation": 0.0},),
)


def promoted_anyway(pipeline_class: type) -> type:
    """`pipeline_class` without its quality gate."""
    return type(f"Ungated{pipeline_class.__name__}", (pipeline_class,), {"validate_model": _pass})


def _pass(self, *args) -> None:
    return None


@dataclass(frozen=True)
class TrainedWorld:
    dump: dict
    snapshot: dict[str, list[dict]]


def build_trained_world(users: int = 60, services: int = 30, seed: int = 7) -> TrainedWorld:
    """Seed a marketplace with sessions, train every stage (ungated), snapshot the store."""
    dump = generate_marketplace(users=users, services=services, seed=seed)
    write_marketplace(dump)
    write_sessions(*generate_sessions(dump, sessions=200, seed=seed))
    change_settings(PROMOTION_MIN_USERS=1, PROMOTION_MARGIN=-1.0)
    runs = [
        promoted_anyway(AEPipeline)(AE_FAST),
        promoted_anyway(EmbeddingPipeline)(),
        promoted_anyway(NCFPipeline)(NCF_FAST),
        promoted_anyway(RLPipeline)(RL_FAST),
        PopularityPipeline(),
    ]
    outcomes = [pipeline.run(env(), seed=seed) for pipeline in runs]
    # The other personalised engines and the champion, as the chain trains them.
    outcomes += [train_stage(name, seed, False) for name in ("ease", "ials", "hybrid", "champion")]
    for outcome in outcomes:
        assert outcome.status == "promoted", outcome
    return TrainedWorld(dump, snapshots.take())
