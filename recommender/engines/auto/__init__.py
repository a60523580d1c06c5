"""Auto: the champion, i.e. whichever promoted personalised engine has the best gate NDCG@10."""

from recommender.engines.spec import EngineSpec, Stage

MODEL_NAME = "champion"

SPEC = EngineSpec(
    name="auto",
    top_k="Auto",
    ranking="AutoRanking",
    serve="recommender.engines.auto.engine:build_engine",
    stages=(
        Stage(
            "champion",
            "recommender.engines.auto.pipeline:train",
            requires=("ncf", "ease", "ials", "hybrid"),
            help="Record the personalised engine with the best gate NDCG@10 (served as Auto).",
        ),
    ),
    pipeline="Champion",
    description="Served by the personalised engine with the best validation (gate) NDCG@10.",
)
