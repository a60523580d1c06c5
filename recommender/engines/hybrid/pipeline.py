"""Training stage "hybrid" (after ncf, ease and ials): the blend of model.py fitted on the tune
part of validation, promoted by the shared gate (engines/base/collaborative.py).

Its parts are the live NCF, EASE and iALS versions, each used only when it was trained on this
very split (its recorded split key): a part trained on other data may have seen the validation
items, and its weight would be learnt on leaked scores. Content similarity (live embeddings) and
popularity (training positives) are always parts; with EASE, a recent-history part over it joins
when it improves the blend (`with_recent_history`). The stored version names each part's version:
serving builds the Hybrid only while those versions are live.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from recommender.engines.autoencoders.embeddings import live_embeddings
from recommender.engines.base.collaborative import CollaborativePipeline, Prepared
from recommender.engines.base.outcome import PipelineOutcome
from recommender.engines.base.pipeline import (
    Artifact,
    DataValidationError,
    RunContext,
    TrainingEnv,
)
from recommender.engines.base.scoring import IdLists, ScoringComponent
from recommender.engines.ease import MODEL_NAME as EASE
from recommender.engines.ease import inference as ease_inference
from recommender.engines.hybrid import MODEL_NAME
from recommender.engines.hybrid.model import (
    RECENCY_DECAYS,
    WEIGHT_GRID,
    ContentSimilarity,
    HybridComponent,
    RecentHistory,
    fit_weights,
    popularity,
)
from recommender.engines.ials import MODEL_NAME as IALS
from recommender.engines.ials import inference as ials_inference
from recommender.engines.ncf import MODEL_NAME as NCF
from recommender.engines.ncf import inference as ncf_inference
from recommender.evaluation.protocol import BLOCK_PAIRS, HeldOut, Interactions, Split
from recommender.model_store import versions as model_store
from recommender.model_store.versions import NoModelError

PERSONALISED = (NCF, EASE, IALS)


@dataclass(frozen=True)
class Live:
    """A live part and the split it was trained on."""

    component: ScoringComponent
    split: str | None


@dataclass(frozen=True)
class Fitted:
    model: HybridComponent
    counts: np.ndarray  # training positives per service of the data
    service_ids: np.ndarray
    versions: dict[str, int]
    split: str
    recency_decay: float | None  # the RecentHistory part's, None without one


def live_parts() -> tuple[dict[str, Live], ContentSimilarity | None]:
    embeddings = live_embeddings()
    builders = {
        NCF: lambda stored: ncf_inference.build(stored, embeddings),
        EASE: ease_inference.build,
        IALS: ials_inference.build,
    }
    parts = {}
    for name, build in builders.items():
        try:
            stored = model_store.load(name)
            parts[name] = Live(build(stored), stored.config.get("split"))
        except NoModelError:
            continue
    content = (
        None if embeddings is None else ContentSimilarity(embeddings.services, embeddings.version)
    )
    return parts, content


def tune_features(
    model: HybridComponent, data: Interactions, split: Split, held: HeldOut
) -> np.ndarray:
    """[users, 1 + negatives, parts] features of `held`'s candidates (padding: -inf)."""
    lists = IdLists.from_pairs(
        split.train_users, data.services.ids[split.train_services - 1], data.users.rows_total
    )
    items = held.candidates()
    out = np.full((*items.shape, len(model.parts)), -np.inf)
    rows = max(1, BLOCK_PAIRS // items.shape[1])
    for start in range(0, len(items), rows):
        users, block = held.users[start : start + rows], items[start : start + rows]
        ids = data.services.ids[np.maximum(block, 1) - 1]
        features = model.features(data.users.ids[users - 1], lists.take(users), ids)
        out[start : start + rows] = np.where((block < 0)[..., None], -np.inf, features)
    return out


def with_recent_history(
    parts: dict[str, ScoringComponent],
    features: np.ndarray,
    without: tuple[np.ndarray, float],
    tune_column: Callable[[RecentHistory], np.ndarray],
    users_seed: int,
) -> tuple[dict[str, ScoringComponent], np.ndarray, float, dict]:
    """The blend with a `RecentHistory` part over the live EASE, its decay and weights chosen
    together on the tune users (the best NDCG@10 over `RECENCY_DECAYS`; `tune_column` gives the
    part's tune features, as `features` holds the others'); the blend `without` it (its weights
    and NDCG@10) where none does better."""
    best = (without[1], None, without[0])
    by_decay = {}
    for decay in RECENCY_DECAYS:
        recent = RecentHistory(parts[EASE], decay)
        column = tune_column(recent)
        weights, ndcg = fit_weights(
            np.concatenate([features, column], axis=-1), np.random.default_rng(users_seed)
        )
        by_decay[str(decay)] = ndcg  # str: stored metadata keys are strings
        if ndcg > best[0]:
            best = (ndcg, recent, weights)
    ndcg, recent, weights = best
    chosen = {
        "recency decay": None if recent is None else recent.decay,
        "tune_ndcg by recency decay": by_decay,
    }
    if recent is None:
        return parts, weights, ndcg, chosen
    return {**parts, "recent": recent}, weights, ndcg, chosen


class HybridPipeline(CollaborativePipeline[Fitted]):
    name = "Hybrid"
    label = "Hybrid"

    def extra(self, ctx: RunContext):
        return live_parts()

    def train(self, data: Prepared, ctx: RunContext) -> Fitted:
        interactions, split = data.data, data.split
        live, content = data.extra
        parts: dict[str, ScoringComponent] = {}
        for name in PERSONALISED:
            if name in live and live[name].split == split.key:
                parts[name] = live[name].component
        ctx.details["left_out"] = {
            name: "not live" if name not in live else "trained on another split"
            for name in PERSONALISED
            if name not in parts
        }
        if not parts:
            raise DataValidationError("no personalised engine is live on this split to blend")
        if content is not None:
            parts["content"] = content
        counts = split.train_counts(interactions.width)[1:]
        parts["popularity"] = popularity(interactions.services.ids, counts)
        features = tune_features(
            HybridComponent(0, parts, np.zeros(len(parts))), interactions, split, split.tune
        )
        # Every blend is fitted on the same tune users (a subset where there are many).
        users_seed = int(ctx.rng.integers(2**32))
        weights, tune_ndcg = fit_weights(features, np.random.default_rng(users_seed))
        ctx.details["tune_without_recent"] = tune_ndcg
        chosen: dict = {"recency decay": None}
        if EASE in parts:

            def tune_column(recent: RecentHistory) -> np.ndarray:
                alone = HybridComponent(0, {"recent": recent}, np.zeros(1))
                return tune_features(alone, interactions, split, split.tune)

            parts, weights, tune_ndcg, chosen = with_recent_history(
                parts, features, (weights, tune_ndcg), tune_column, users_seed
            )
        model = HybridComponent(0, parts, weights)
        versions = {name: int(part.version) for name, part in parts.items() if name != "popularity"}
        ctx.details.update(
            parts=list(parts),
            versions=versions,
            grid={"weights per part": list(WEIGHT_GRID), "recency decay": list(RECENCY_DECAYS)},
            chosen={"weights": dict(zip(parts, weights.tolist(), strict=True)), **chosen},
            tune_ndcg=tune_ndcg,
        )
        decay = chosen["recency decay"]
        return Fitted(model, counts, interactions.services.ids, versions, split.key, decay)

    def package(self, model: Fitted, metrics: dict, ctx: RunContext) -> Artifact:
        return Artifact(
            MODEL_NAME,
            {
                "weights": torch.from_numpy(model.model.weights),
                "service_ids": torch.tensor(model.service_ids),
                "counts": torch.from_numpy(model.counts.astype(np.float32)),
            },
            {
                "parts": list(model.model.parts),
                "versions": model.versions,
                "split": model.split,
                "recency_decay": model.recency_decay,
            },
        )


def train(env: TrainingEnv, seed: int | None = None, progress: bool = False) -> PipelineOutcome:
    return HybridPipeline().run(env, seed, progress)
