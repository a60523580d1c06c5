"""Training stage "ncf": accessed services + live embeddings -> NCF, promoted only when it beats
Popularity's validation HR@10 on the same leave-last-out split and sampled negatives.

The Popularity figures come from a scorer computed here (training positives per service), so the
comparison does not depend on the Popularity engine's own model. Metrics (HR@3/10, NDCG@3/10 on
validation and test, for NCF and Popularity) go to the pipeline metadata and the model version.
The stored version holds the state dict, the sorted user and service ids that index its
embeddings, and the embeddings version its content branch was trained on.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm.auto import tqdm

from recommender.engines.autoencoders import EMBEDDINGS_MODEL as EMBEDDINGS
from recommender.engines.autoencoders.embeddings import Embeddings, live_embeddings
from recommender.engines.base.outcome import PipelineOutcome
from recommender.engines.base.pipeline import (
    Artifact,
    DataValidationError,
    ModelValidationError,
    Pipeline,
    RunContext,
    TrainingEnv,
)
from recommender.engines.ncf import MODEL_NAME
from recommender.engines.ncf import data as ncf_data
from recommender.engines.ncf.data import HeldOut, Interactions, Split
from recommender.engines.ncf.model import NCFShape
from recommender.engines.ncf.training import (
    FitResult,
    TrainConfig,
    fit,
    held_out_metrics,
    make_scorer,
)
from recommender.evaluation.metrics import DEFAULT_KS, DEFAULT_NEGATIVES, score_metrics

PROMOTION_METRIC = "hr@10"


@dataclass(frozen=True)
class NCFConfig:
    mf_dim: int = 64
    mlp_dim: int = 64
    mlp_layers: tuple[int, ...] = (64, 32, 16)
    content_layers: tuple[int, ...] = (64, 32)
    eval_negatives: int = DEFAULT_NEGATIVES
    min_positives: int = ncf_data.MIN_POSITIVES  # per user, to be held out for evaluation
    min_eval_users: int = 1
    train: TrainConfig = field(default_factory=TrainConfig)


@dataclass(frozen=True)
class Raw:
    interactions: Interactions
    embeddings: Embeddings


@dataclass(frozen=True)
class Prepared:
    raw: Raw
    split: Split
    user_content: np.ndarray  # [users + 1, dim], row 0 (unknown) zeros
    service_content: np.ndarray
    shape: NCFShape


@dataclass(frozen=True)
class Trained:
    fit: FitResult
    user_ids: np.ndarray  # sorted: the model's user rows 1..n
    service_ids: np.ndarray
    embeddings_version: int


def content_matrix(table, ids: np.ndarray) -> np.ndarray:
    """AE embeddings of `ids` in row order 1..n, with the all-zero unknown row 0 on top."""
    rows = table.rows(ids)
    return np.vstack([np.zeros((1, table.dim), dtype=np.float32), rows]).astype(np.float32)


class NCFPipeline(Pipeline[Raw, Prepared, Trained]):
    name = "NCF"
    requires = (EMBEDDINGS,)

    def __init__(self, config: NCFConfig | None = None):
        self.config = config or NCFConfig()

    def extract(self, ctx: RunContext) -> Raw:
        embeddings = live_embeddings()
        if embeddings is None:  # promoted and dropped between the `requires` check and here
            raise DataValidationError("no live embeddings")
        started = time.perf_counter()
        interactions = ncf_data.read_interactions()
        ctx.details.update(
            read_s=time.perf_counter() - started,
            embeddings_version=embeddings.version,
            users_with_positives=len(interactions.users),
            services=len(interactions.services),
            recommendable_services=len(interactions.recommendable),
            positives=len(interactions.service_rows),
        )
        return Raw(interactions, embeddings)

    def validate_data(self, raw: Raw, ctx: RunContext) -> None:
        data = raw.interactions
        evaluable = int((data.length[data.position == 0] >= self.config.min_positives).sum())
        ctx.details["evaluable_users"] = evaluable
        if len(data.recommendable) < 2:
            raise DataValidationError(
                f"{len(data.recommendable)} recommendable service(s): at least 2 needed"
            )
        if evaluable < self.config.min_eval_users:
            raise DataValidationError(
                f"{evaluable} user(s) with at least {self.config.min_positives} accessed services"
                f" to validate on (at least {self.config.min_eval_users} needed)"
            )

    def prepare(self, raw: Raw, ctx: RunContext) -> Prepared:
        data = raw.interactions
        c = self.config
        split = ncf_data.split(data, ctx.seed, c.eval_negatives, c.min_positives)
        user_content = content_matrix(raw.embeddings.users, data.users.ids)
        service_content = content_matrix(raw.embeddings.services, data.services.ids)
        shape = NCFShape(
            users=len(data.users),
            services=len(data.services),
            user_content=user_content.shape[1],
            service_content=service_content.shape[1],
            mf_dim=c.mf_dim,
            mlp_dim=c.mlp_dim,
            mlp_layers=c.mlp_layers,
            content_layers=c.content_layers,
        )
        ctx.details.update(
            train_positives=len(split.train_users),
            valid_users=len(split.valid.users),
            test_users=len(split.test.users),
            eval_negatives=c.eval_negatives,
            shape=shape.as_dict(),
        )
        return Prepared(raw, split, user_content, service_content, shape)

    def train(self, data: Prepared, ctx: RunContext) -> Trained:
        config = self.config.train
        with tqdm(
            total=config.max_epochs, desc="NCF", disable=not ctx.progress, leave=False
        ) as bar:

            def on_epoch(epoch: int, loss: float, valid: dict) -> None:
                ctx.report.scalar("loss/train", loss, epoch)
                ctx.report.scalar("validation/hr@10", valid["hr@10"], epoch)
                ctx.report.scalar("validation/ndcg@10", valid["ndcg@10"], epoch)
                bar.update(1)
                bar.set_postfix(loss=f"{loss:.3f}", hr10=f"{valid['hr@10']:.3f}")

            result = fit(
                data.raw.interactions,
                data.split,
                data.user_content,
                data.service_content,
                data.shape,
                config,
                ctx.device,
                ctx.rng,
                ctx.torch_generator(),
                on_epoch,
            )
        ctx.details.update(
            epochs=result.epochs,
            best_epoch=result.best_epoch,
            training_s=result.seconds,
            device=str(ctx.device),
            history=result.history,
        )
        interactions = data.raw.interactions
        return Trained(
            result, interactions.users.ids, interactions.services.ids, data.raw.embeddings.version
        )

    def evaluate(self, model: Trained, data: Prepared, ctx: RunContext) -> dict:
        scorer = make_scorer(
            model.fit.model,
            data.raw.interactions,
            data.split,
            data.user_content,
            data.service_content,
            ctx.device,
        )
        popularity = ncf_data.popularity_counts(data.raw.interactions, data.split)
        batch = self.config.train.eval_batch_users
        metrics = {
            "ncf": {
                "valid": held_out_metrics(scorer, data.split.valid, batch, ctx.seed),
                "test": held_out_metrics(scorer, data.split.test, batch, ctx.seed),
            },
            "popularity": {
                "valid": popularity_metrics(popularity, data.split.valid, ctx.seed),
                "test": popularity_metrics(popularity, data.split.test, ctx.seed),
            },
            "best_epoch": model.fit.best_epoch,
            "epochs": model.fit.epochs,
            "training_s": model.fit.seconds,
            "eval_negatives": self.config.eval_negatives,
        }
        ctx.details.update(metrics)
        return metrics

    def validate_model(self, model: Trained, metrics: dict, ctx: RunContext) -> None:
        ours = metrics["ncf"]["valid"][PROMOTION_METRIC]
        baseline = metrics["popularity"]["valid"][PROMOTION_METRIC]
        ctx.details["model_is_valid"] = ours > baseline
        if not ours > baseline:
            raise ModelValidationError(
                f"NCF validation HR@10 {ours:.4f} does not beat Popularity's {baseline:.4f}"
            )

    def package(self, model: Trained, metrics: dict, ctx: RunContext) -> Artifact:
        network = model.fit.model
        return Artifact(
            MODEL_NAME,
            {
                "state": {k: v.detach().cpu() for k, v in network.state_dict().items()},
                "user_ids": torch.from_numpy(np.ascontiguousarray(model.user_ids)),
                "service_ids": torch.from_numpy(np.ascontiguousarray(model.service_ids)),
            },
            {"shape": network.shape.as_dict(), "embeddings_version": model.embeddings_version},
        )


def popularity_metrics(counts: np.ndarray, held: HeldOut, seed: int) -> dict:
    """HR/NDCG of the training-count scorer on the same held-out candidates as NCF."""
    items = np.concatenate([held.positives[:, None], held.negatives], axis=1)
    scores = np.where(items < 0, -np.inf, counts[np.maximum(items, 0)])
    return score_metrics(scores[:, 0], scores[:, 1:], DEFAULT_KS, np.random.default_rng(seed))


def train(env: TrainingEnv, seed: int | None = None, progress: bool = False) -> PipelineOutcome:
    return NCFPipeline().run(env, seed, progress)
