"""Random: K services drawn uniformly, or every candidate shuffled; the always-ready floor."""

from recommender.engines.spec import EngineSpec

SPEC = EngineSpec(
    name="random",
    top_k="Random",
    ranking="RandomRanking",
    serve="recommender.engines.random.engine:build",
    anonymous=True,
    floor=True,
    description="Uniformly random picks: the floor when nothing is trained.",
)
