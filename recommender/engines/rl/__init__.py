"""RL: TD3 actor-critic over user sessions (states: user and history; actions: K services)."""

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
            help="Train the RL actor (TD3) on SARSes from user actions, or synthetic sessions.",
        ),
    ),
    description="TD3 actor-critic trained on browsing sessions.",
)
