"""Training the toy engine on the shared pipeline framework."""

from __future__ import annotations

from collections import Counter

import numpy as np
import torch
from recommender.engines.toy import MODEL_NAME

from recommender.engines.base.pipeline import Artifact, Pipeline
from recommender.models.marketplace import User


class ToyPipeline(Pipeline):
    name = "Toy"

    def extract(self, ctx):
        return [user.accessed_services for user in User.objects.only("accessed_services")]

    def prepare(self, raw, ctx):
        return Counter(service for services in raw for service in services)

    def train(self, data, ctx):
        ids = np.array(sorted(data), dtype=np.int64)
        return ids, np.array([data[i] for i in ids.tolist()], dtype=np.float64)

    def evaluate(self, model, data, ctx):
        return {"services": len(model[0])}

    def package(self, model, metrics, ctx):
        ids, weights = model
        return Artifact(
            MODEL_NAME, {"ids": torch.from_numpy(ids), "weights": torch.from_numpy(weights)}
        )


def train(env, seed=None, progress=False):
    return ToyPipeline().run(env, seed, progress)
