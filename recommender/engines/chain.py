"""The training chain that `/update` and `flask train all` run, in order.

Each stage is `train(seed=..., progress=...) -> PipelineOutcome`. A stage that is rejected or
fails leaves the previous model live; later stages still run on whatever is live.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from recommender.engines.base.outcome import PipelineOutcome

TrainFn = Callable[..., PipelineOutcome]

# (stage name, "module:function"), in training order: AE -> embeddings -> NCF -> RL -> Popularity.
TRAINING_CHAIN: list[tuple[str, str]] = [
    ("ae", "recommender.engines.autoencoders.pipeline:train_ae"),
    ("embedding", "recommender.engines.autoencoders.pipeline:train_embeddings"),
    ("ncf", "recommender.engines.ncf.pipeline:train"),
    ("rl", "recommender.engines.rl.pipeline:train"),
    ("popularity", "recommender.engines.popularity.pipeline:train"),
]


def stage(name: str) -> TrainFn:
    for stage_name, target in TRAINING_CHAIN:
        if stage_name == name:
            module, _, function = target.partition(":")
            return getattr(importlib.import_module(module), function)
    raise KeyError(f"No training stage named {name!r}")


def stage_names() -> list[str]:
    return [name for name, _ in TRAINING_CHAIN]
