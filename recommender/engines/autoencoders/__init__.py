"""Autoencoders over content features, and the user and service embeddings they produce.

Not served itself: NCF and RL read the embeddings (models "autoencoders" and "embeddings")."""

from recommender.engines.spec import EngineSpec, Stage

AE_MODEL = "autoencoders"
EMBEDDINGS_MODEL = "embeddings"

SPEC = EngineSpec(
    name="autoencoders",
    stages=(
        Stage(
            "ae",
            "recommender.engines.autoencoders.pipeline:train_ae",
            help="Train the user and service autoencoders (content embeddings).",
        ),
        Stage(
            "embedding",
            "recommender.engines.autoencoders.pipeline:train_embeddings",
            requires=("ae",),
            help="Recompute the dense embeddings of every user and service (needs the AE).",
        ),
    ),
    description="Content autoencoders and the embeddings NCF and RL build on.",
)
