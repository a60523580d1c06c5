"""RL: off-policy actor-critic over candidate features (state: user and history; action: a
weight per candidate feature; the K best-scored candidates are served)."""

from recommender.engines.spec import EngineSpec, Stage

MODEL_NAME = "rl"

SPEC = EngineSpec(
    name="rl",
    top_k="RL",
    serve="recommender.engines.rl.engine:build_engine",
    stages=(
        Stage(
            "rl",
            "recommender.engines.rl.pipeline:train",
            requires=("embedding",),
            help="Train the RL actor-critic on logged requests (SARS), or synthetic sessions.",
        ),
    ),
    description="Off-policy actor-critic over candidate features, trained on logged requests.",
)
