"""iALS: implicit-feedback alternating least squares through the `implicit` library (CPU)."""

from recommender.engines.spec import EngineSpec, Stage

MODEL_NAME = "ials"

SPEC = EngineSpec(
    name="ials",
    top_k="iALS",
    ranking="iALSRanking",
    serve="recommender.engines.ials.inference:build_engine",
    stages=(
        Stage(
            "ials",
            "recommender.engines.ials.pipeline:train",
            help="Fit implicit's ALS (factors, regularization, alpha chosen on validation).",
        ),
    ),
    evaluate="recommender.engines.ials.inference:offline_metrics",
    description="Matrix factorisation for implicit feedback (implicit's ALS).",
)
