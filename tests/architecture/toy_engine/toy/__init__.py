"""Toy: services ranked by how many users accessed them (a test's stand-in for a new engine)."""

from recommender.engines.spec import EngineSpec, Stage

MODEL_NAME = "toy"

SPEC = EngineSpec(
    name="toy",
    top_k="Toy",
    ranking="ToyRanking",
    serve="recommender.engines.toy.engine:build",
    stages=(
        Stage(
            "toy",
            "recommender.engines.toy.pipeline:train",
            requires=("popularity",),
            help="Train the toy engine: one weight per service, from the users' orders.",
        ),
    ),
    evaluate="recommender.engines.toy.engine:evaluate",
    description="A test engine added as one folder.",
)
