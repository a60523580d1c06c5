"""NCF: neural collaborative filtering (GMF + MLP over ids, plus a content branch)."""

from recommender.engines.spec import EngineSpec, Stage

MODEL_NAME = "ncf"

SPEC = EngineSpec(
    name="ncf",
    top_k="NCF",
    ranking="NCFRanking",
    serve="recommender.engines.ncf.inference:build_engine",
    stages=(
        Stage(
            "ncf",
            "recommender.engines.ncf.pipeline:train",
            requires=("embedding",),
            help="Train the Neural Collaborative Filtering model (needs the embeddings).",
        ),
    ),
    evaluate="recommender.engines.ncf.inference:offline_metrics",
    description="Neural collaborative filtering over ids, history and content embeddings.",
)
