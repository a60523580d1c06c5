"""Training stage "ncf": accessed services + live embeddings -> NCF on the evaluation protocol's
split (engines/base/collaborative.py): early stopping (the number of epochs, NCF's tuned setting)
on the tune part of validation, promoted only when its gate NDCG@10 beats the popularity
baseline's by PROMOTION_MARGIN on the same candidates.

The stored version holds the state dict, the sorted user and service ids that index its
embeddings, the embeddings version its content branch was trained on and the split key.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm.auto import tqdm

from recommender.engines.autoencoders import EMBEDDINGS_MODEL as EMBEDDINGS
from recommender.engines.autoencoders.embeddings import Embeddings, live_embeddings
from recommender.engines.base.collaborative import CollaborativePipeline, Prepared
from recommender.engines.base.outcome import PipelineOutcome
from recommender.engines.base.pipeline import (
    Artifact,
    DataValidationError,
    RunContext,
    TrainingEnv,
)
from recommender.engines.ncf import MODEL_NAME
from recommender.engines.ncf.model import NCFShape
from recommender.engines.ncf.training import FitResult, TrainConfig, fit, make_scorer
from recommender.evaluation.protocol import Scorer


@dataclass(frozen=True)
class NCFConfig:
    mf_dim: int = 64
    mlp_dim: int = 64
    mlp_layers: tuple[int, ...] = (64, 32, 16)
    content_layers: tuple[int, ...] = (64, 32)
    train: TrainConfig = field(default_factory=TrainConfig)


@dataclass(frozen=True)
class Content:
    user_content: np.ndarray  # [users + 1, dim], row 0 (unknown) zeros
    service_content: np.ndarray
    shape: NCFShape


@dataclass(frozen=True)
class Trained:
    fit: FitResult
    content: Content
    user_ids: np.ndarray  # sorted: the model's user rows 1..n
    service_ids: np.ndarray
    split: str
    embeddings_version: int


def content_matrix(table, ids: np.ndarray) -> np.ndarray:
    """AE embeddings of `ids` in row order 1..n, with the all-zero unknown row 0 on top."""
    rows = table.rows(ids)
    return np.vstack([np.zeros((1, table.dim), dtype=np.float32), rows]).astype(np.float32)


class NCFPipeline(CollaborativePipeline[Trained]):
    name = "NCF"
    label = "NCF"
    requires = (EMBEDDINGS,)

    def __init__(self, config: NCFConfig | None = None):
        self.config = config or NCFConfig()

    def extra(self, ctx: RunContext) -> Embeddings:
        embeddings = live_embeddings()
        if embeddings is None:  # promoted and dropped between the `requires` check and here
            raise DataValidationError("no live embeddings")
        ctx.details["embeddings_version"] = embeddings.version
        return embeddings

    def content(self, data: Prepared) -> Content:
        c, interactions = self.config, data.data
        user_content = content_matrix(data.extra.users, interactions.users.ids)
        service_content = content_matrix(data.extra.services, interactions.services.ids)
        shape = NCFShape(
            users=len(interactions.users),
            services=len(interactions.services),
            user_content=user_content.shape[1],
            service_content=service_content.shape[1],
            mf_dim=c.mf_dim,
            mlp_dim=c.mlp_dim,
            mlp_layers=c.mlp_layers,
            content_layers=c.content_layers,
        )
        return Content(user_content, service_content, shape)

    def train(self, data: Prepared, ctx: RunContext) -> Trained:
        config = self.config.train
        content = self.content(data)
        with tqdm(
            total=config.max_epochs, desc="NCF", disable=not ctx.progress, leave=False
        ) as bar:

            def on_epoch(epoch: int, loss: float, valid: dict) -> None:
                ctx.report.scalar("loss/train", loss, epoch)
                ctx.report.scalar("tune/hr@10", valid["hr@10"], epoch)
                ctx.report.scalar("tune/ndcg@10", valid["ndcg@10"], epoch)
                bar.update(1)
                bar.set_postfix(loss=f"{loss:.3f}", hr10=f"{valid['hr@10']:.3f}")

            result = fit(
                data.data,
                data.split,
                content.user_content,
                content.service_content,
                content.shape,
                config,
                ctx.device,
                ctx.rng,
                ctx.torch_generator(),
                on_epoch,
            )
        ctx.details.update(
            grid={"epochs": list(range(1, result.epochs + 1))},
            chosen={"epochs": result.best_epoch},
            epochs=result.epochs,
            best_epoch=result.best_epoch,
            training_s=result.seconds,
            device=str(ctx.device),
            shape=content.shape.as_dict(),
            history=result.history,
        )
        return Trained(
            result,
            content,
            data.data.users.ids,
            data.data.services.ids,
            data.split.key,
            data.extra.version,
        )

    def scorer(self, model: Trained, data: Prepared) -> Scorer:
        return make_scorer(
            model.fit.model,
            data.data,
            data.split,
            model.content.user_content,
            model.content.service_content,
            next(model.fit.model.parameters()).device,
        )

    def evaluate(self, model: Trained, data: Prepared, ctx: RunContext) -> dict:
        metrics = super().evaluate(model, data, ctx)
        metrics.update(best_epoch=model.fit.best_epoch, epochs=model.fit.epochs)
        return metrics

    def package(self, model: Trained, metrics: dict, ctx: RunContext) -> Artifact:
        network = model.fit.model
        return Artifact(
            MODEL_NAME,
            {
                "state": {k: v.detach().cpu() for k, v in network.state_dict().items()},
                "user_ids": torch.tensor(model.user_ids),
                "service_ids": torch.tensor(model.service_ids),
            },
            {
                "shape": network.shape.as_dict(),
                "embeddings_version": model.embeddings_version,
                "split": model.split,
            },
        )


def train(env: TrainingEnv, seed: int | None = None, progress: bool = False) -> PipelineOutcome:
    return NCFPipeline().run(env, seed, progress)
