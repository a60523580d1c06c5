"""EASE: a closed-form item-item model (Steck, 2019) over the users' accessed services."""

from recommender.engines.spec import EngineSpec, Stage

MODEL_NAME = "ease"

SPEC = EngineSpec(
    name="ease",
    top_k="EASE",
    ranking="EASERanking",
    serve="recommender.engines.ease.inference:build_engine",
    stages=(
        Stage(
            "ease",
            "recommender.engines.ease.pipeline:train",
            help="Fit EASE on the accessed services (lambda chosen on validation).",
        ),
    ),
    evaluate="recommender.engines.ease.inference:offline_metrics",
    description="Closed-form item-item model: services ordered with the user's services.",
)
