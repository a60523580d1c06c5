"""What the pipelines of the personalised engines (NCF, EASE, iALS, Hybrid) share: the
evaluation protocol's split (recommender.evaluation.protocol), a grid of settings chosen on the
split's tune part, metrics on tune, gate and test for the engine and for a popularity baseline
(training positives per service) on the same candidates, and the promotion gate.

Promotion: on the gate part (validation users the tuning never selected on), the engine's
NDCG@10 must exceed the popularity baseline's by PROMOTION_MARGIN, with at least
PROMOTION_MIN_USERS gate users. The gate NDCG@10 is also what the champion (engine "Auto") is
chosen by. Test metrics (sampled and, on at most EVALUATION_FULL_USERS users, full-catalogue)
are recorded, never used for a decision. Each part is cut to at most EVALUATION_MAX_USERS
users (seeded), which bounds the cost of tuning and evaluation on large catalogues.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

import numpy as np

from recommender.engines.base.interactions import read_interactions
from recommender.engines.base.pipeline import (
    DataValidationError,
    ModelValidationError,
    Pipeline,
    RunContext,
)
from recommender.engines.base.scoring import component_scorer
from recommender.evaluation import protocol
from recommender.evaluation.protocol import HeldOut, Interactions, Scorer, Split

GATE_METRIC = "ndcg@10"
T = TypeVar("T")
M = TypeVar("M")


@dataclass(frozen=True)
class Source:
    data: Interactions
    extra: Any = None  # what else the engine reads (NCF: the live embeddings)


@dataclass(frozen=True)
class Prepared:
    data: Interactions
    split: Split
    extra: Any = None


def popularity_scorer(data: Interactions, split: Split) -> Scorer:
    counts = split.train_counts(data.width)
    return lambda users, items: counts[items]


def choose(
    grid: Iterable[T],
    fit: Callable[[T], M],
    score: Callable[[M], Scorer],
    held: HeldOut,
    seed: int,
    ctx: RunContext,
) -> tuple[T, M]:
    """Fit every setting of `grid`, keep the one with the best `held` (tune) NDCG@10 (ties:
    the first); the grid, each setting's tune metrics and the choice go to the step details."""
    best: tuple[float, T, M] | None = None
    tried = []
    for setting in grid:
        started = time.perf_counter()
        model = fit(setting)
        metrics = protocol.sampled_metrics(score(model), held, seed=seed)
        tried.append(
            {"setting": setting, "tune": metrics, "seconds": time.perf_counter() - started}
        )
        if best is None or metrics[GATE_METRIC] > best[0]:
            best = (metrics[GATE_METRIC], setting, model)
    assert best is not None, "an empty grid"
    ctx.details.update(grid=tried, chosen=best[1])
    return best[1], best[2]


class CollaborativePipeline(Pipeline[Source, Prepared, M]):
    """extract, validate_data, prepare, evaluate and validate_model of a personalised engine;
    subclasses implement `train`, `package` and `scorer` (the model as the protocol's scorer),
    and `extra` when they read more than the interactions."""

    label: ClassVar[str]  # in reasons and metrics, e.g. "EASE"

    def extra(self, ctx: RunContext) -> Any:
        return None

    def extract(self, ctx: RunContext) -> Source:
        extra = self.extra(ctx)
        started = time.perf_counter()
        data = read_interactions()
        ctx.details.update(
            read_s=time.perf_counter() - started,
            users_with_positives=len(data.users),
            services=len(data.services),
            recommendable_services=len(data.recommendable),
            positives=len(data.service_rows),
        )
        return Source(data, extra)

    def validate_data(self, source: Source, ctx: RunContext) -> None:
        raw = source.data
        if len(raw.recommendable) < 2:
            raise DataValidationError(
                f"{len(raw.recommendable)} recommendable service(s): at least 2 needed"
            )
        pool = raw.in_pool()[raw.service_rows]
        per_user = np.bincount(raw.user_rows, weights=pool, minlength=raw.users.rows_total)
        first = raw.position == 0
        evaluable = int(
            (
                (raw.length[first] >= protocol.MIN_POSITIVES)
                & (per_user[raw.user_rows[first]] >= 2)
            ).sum()
        )
        ctx.details["evaluable_users"] = evaluable
        needed = ctx.env.settings.PROMOTION_MIN_USERS
        if evaluable < needed:
            raise DataValidationError(
                f"{evaluable} user(s) with at least {protocol.MIN_POSITIVES} accessed services"
                f" to validate on (at least {needed} needed)"
            )

    def prepare(self, raw: Source, ctx: RunContext) -> Prepared:
        settings = ctx.env.settings
        split = protocol.capped(
            protocol.split(raw.data, ctx.seed), settings.EVALUATION_MAX_USERS, ctx.seed
        )
        ctx.details.update(
            train_positives=len(split.train_users),
            tune_users=len(split.tune.users),
            gate_users=len(split.gate.users),
            test_users=len(split.test.users),
            split=split.key,
        )
        return Prepared(raw.data, split, raw.extra)

    def scorer(self, model: M, data: Prepared) -> Scorer:
        """The trained model as the protocol's scorer; by default through its serving
        component, `model.model` (see base/scoring.py)."""
        return component_scorer(model.model, data.data, data.split)

    def evaluate(self, model: M, data: Prepared, ctx: RunContext) -> dict[str, Any]:
        full = ctx.env.settings.EVALUATION_FULL_USERS
        metrics: dict[str, Any] = {"split": data.split.key}
        scorers = {
            "model": self.scorer(model, data),
            "popularity": popularity_scorer(data.data, data.split),
        }
        for name, score in scorers.items():
            metrics[name] = {
                part: protocol.sampled_metrics(score, getattr(data.split, part), seed=ctx.seed)
                for part in ("tune", "gate")
            }
            metrics[name]["test"] = protocol.held_out_metrics(
                score, data.data, data.split, data.split.test, seed=ctx.seed, full_users=full
            )
        ctx.details.update(metrics)
        return metrics

    def validate_model(self, model: M, metrics: dict, ctx: RunContext) -> None:
        settings = ctx.env.settings
        problem = protocol.promotion_problem(
            metrics["model"]["gate"],
            metrics["popularity"]["gate"],
            GATE_METRIC,
            settings.PROMOTION_MARGIN,
            settings.PROMOTION_MIN_USERS,
            self.label,
        )
        ctx.details["model_is_valid"] = problem is None
        if problem:
            raise ModelValidationError(problem)
