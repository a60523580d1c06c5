"""Hybrid: a learnt blend of the personalised engines' scores, content similarity, popularity,
EASE over the recent history, co-visits (covisits.py) and text similarity (text.py)."""

from recommender.engines.spec import EngineSpec, Stage

MODEL_NAME = "hybrid"

SPEC = EngineSpec(
    name="hybrid",
    top_k="Hybrid",
    ranking="HybridRanking",
    serve="recommender.engines.hybrid.inference:build_engine",
    stages=(
        Stage(
            "hybrid",
            "recommender.engines.hybrid.pipeline:train",
            requires=("ncf", "ease", "ials"),
            help="Fit the Hybrid's blend weights on validation (after NCF, EASE and iALS).",
        ),
    ),
    evaluate="recommender.engines.hybrid.inference:offline_metrics",
    description=(
        "Learnt blend of NCF, EASE, iALS, content, popularity, recent history, co-visits, text."
    ),
)
