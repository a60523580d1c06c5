"""Popularity: what Marketplace users order and click, weighted toward the search context."""

from recommender.engines.spec import EngineSpec, Stage

MODEL_NAME = "popularity"

SPEC = EngineSpec(
    name="popularity",
    top_k="Popularity",
    serve="recommender.engines.popularity.engine:build",
    stages=(
        Stage(
            "popularity",
            "recommender.engines.popularity.pipeline:train",
            help="Count orders and panel clicks per service for the Popularity engine.",
        ),
    ),
    anonymous=True,
    description="Most ordered and clicked services within the search context.",
)
