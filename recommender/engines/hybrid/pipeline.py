"""Training stage "hybrid" (after ncf, ease and ials): the blend of model.py fitted on the tune
part of validation, promoted by the shared gate (engines/base/collaborative.py).

Its parts are the live NCF, EASE and iALS versions, each used only when it was trained on this
very split (its recorded split key): a part trained on other data may have seen the validation
items, and its weight would be learnt on leaked scores. Content similarity (live embeddings) and
popularity (training positives) are always parts; with EASE, a recent-history part over it joins
when it improves the blend, and so do the co-visits of covisits.py, fitted here on the training
lists, and the text similarity of text.py, fitted on the services' names and descriptions
(`with_best_option`: each with the setting that blends best). The stored version names each live
part's version (serving builds the Hybrid only while those versions are live) and holds the
co-visit weights and text similarities.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass

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
from recommender.engines.hybrid import MODEL_NAME, covisits, text
from recommender.engines.hybrid.covisits import CoVisits
from recommender.engines.hybrid.model import (
    RECENCY_DECAYS,
    WEIGHT_GRID,
    ContentSimilarity,
    HybridComponent,
    RecentHistory,
    fit_weights,
    popularity,
)
from recommender.engines.hybrid.text import TextSimilarity
from recommender.engines.ials import MODEL_NAME as IALS
from recommender.engines.ials import inference as ials_inference
from recommender.engines.ncf import MODEL_NAME as NCF
from recommender.engines.ncf import inference as ncf_inference
from recommender.evaluation.protocol import BLOCK_PAIRS, HeldOut, Interactions, Split
from recommender.model_store import versions as model_store
from recommender.model_store.versions import NoModelError

PERSONALISED = (NCF, EASE, IALS)
OWN_PARTS = ("popularity", "covisits", "text")  # fitted by this stage, stored in its version


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

    def part(self, name: str) -> ScoringComponent | None:
        return self.model.parts.get(name)


@dataclass(frozen=True)
class Inputs:
    """What the stage reads besides the interactions."""

    live: dict[str, Live]
    content: ContentSimilarity | None
    texts: dict[int, str]  # service id -> name, tagline and description


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


@dataclass(frozen=True)
class Blend:
    parts: Mapping[str, ScoringComponent]
    features: np.ndarray  # the parts' tune features, in order
    weights: np.ndarray
    ndcg: float  # the weights' tune NDCG@10


def with_best_option(
    blend: Blend,
    name: str,
    options: Mapping[str, ScoringComponent],
    tune_column: Callable[[ScoringComponent], np.ndarray],
    users_seed: int,
) -> tuple[Blend, dict[str, float]]:
    """`blend` with part `name` added as the option (label -> part) whose blend has the best
    NDCG@10 on the tune users (`tune_column` gives an option's tune features, the weights are
    fitted again on the same users), or `blend` unchanged where none does better; and each
    option's NDCG@10 by label. Coordinate ascent over more columns can end on weights that are
    better and leave the new part at 0: then the better weights are kept, without the part."""
    best, by_option = blend, {}
    for label, part in options.items():
        features = np.concatenate([blend.features, tune_column(part)], axis=-1)
        weights, ndcg = fit_weights(features, np.random.default_rng(users_seed))
        by_option[label] = ndcg
        if ndcg <= best.ndcg:
            continue
        if weights[-1] == 0:
            best = Blend(blend.parts, blend.features, weights[:-1], ndcg)
        else:
            best = Blend({**blend.parts, name: part}, features, weights, ndcg)
    return best, by_option


class HybridPipeline(CollaborativePipeline[Fitted]):
    name = "Hybrid"
    label = "Hybrid"

    def extra(self, ctx: RunContext) -> Inputs:
        return Inputs(*live_parts(), text.read_texts())

    def train(self, data: Prepared, ctx: RunContext) -> Fitted:
        interactions, split = data.data, data.split
        parts = self.base_parts(data, ctx)
        counts = split.train_counts(interactions.width)[1:]
        parts["popularity"] = popularity(interactions.services.ids, counts)
        features = tune_features(
            HybridComponent(0, parts, np.zeros(len(parts))), interactions, split, split.tune
        )
        # Every blend is fitted on the same tune users (a subset where there are many).
        users_seed = int(ctx.rng.integers(2**32))
        blend = Blend(parts, features, *fit_weights(features, np.random.default_rng(users_seed)))
        blend, chosen = self.with_optional_parts(blend, data, users_seed, ctx)
        versions = {
            name: int(part.version) for name, part in blend.parts.items() if name not in OWN_PARTS
        }
        ctx.details.update(
            parts=list(blend.parts),
            versions=versions,
            chosen={
                "weights": dict(zip(blend.parts, blend.weights.tolist(), strict=True)),
                **chosen,
            },
            tune_ndcg=blend.ndcg,
        )
        model = HybridComponent(0, blend.parts, blend.weights)
        return Fitted(model, counts, interactions.services.ids, versions, split.key)

    def base_parts(self, data: Prepared, ctx: RunContext) -> dict[str, ScoringComponent]:
        """The live personalised engines trained on this split, and content similarity."""
        live, content = data.extra.live, data.extra.content
        parts: dict[str, ScoringComponent] = {}
        for name in PERSONALISED:
            if name in live and live[name].split == data.split.key:
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
        return parts

    def with_optional_parts(
        self, blend: Blend, data: Prepared, users_seed: int, ctx: RunContext
    ) -> tuple[Blend, dict]:
        """`blend` with the recent-history part (EASE only), then the co-visits, then the text
        similarity, each where it improves the blend; what was tried goes to the step
        details."""
        interactions, split = data.data, data.split

        def tune_column(part: ScoringComponent) -> np.ndarray:
            alone = HybridComponent(0, {"option": part}, np.zeros(1))
            return tune_features(alone, interactions, split, split.tune)

        ctx.details["tune_without_recent"] = blend.ndcg
        chosen: dict = {"recency decay": None}
        if EASE in blend.parts:
            recent = {str(d): RecentHistory(blend.parts[EASE], d) for d in RECENCY_DECAYS}
            blend, by_decay = with_best_option(blend, "recent", recent, tune_column, users_seed)
            chosen["tune_ndcg by recency decay"] = by_decay  # str keys: stored metadata's
            if "recent" in blend.parts:
                chosen["recency decay"] = blend.parts["recent"].decay
        ctx.details["tune_without_covisits"] = blend.ndcg
        fitted = covisits.fit(
            interactions.services,
            split.train_users,
            split.train_services,
            split.train_counts(interactions.width),
        )
        options = {part.setting.label: part for part in fitted}
        blend, by_setting = with_best_option(blend, "covisits", options, tune_column, users_seed)
        covisited = blend.parts.get("covisits")
        chosen["co-visits"] = covisited.setting.label if isinstance(covisited, CoVisits) else None
        chosen["tune_ndcg by co-visits"] = by_setting
        ctx.details["tune_without_text"] = blend.ndcg
        fitted_text = text.fit(interactions.services, data.extra.texts)
        worded = {str(part.decay): part for part in fitted_text}
        blend, by_decay = with_best_option(blend, "text", worded, tune_column, users_seed)
        similar = blend.parts.get("text")
        chosen["text decay"] = similar.decay if isinstance(similar, TextSimilarity) else None
        chosen["tune_ndcg by text decay"] = by_decay
        ctx.details["grid"] = {
            "weights per part": list(WEIGHT_GRID),
            "recency decay": list(RECENCY_DECAYS),
            "co-visits": list(options),
            "text decay": list(text.DECAYS),
        }
        return blend, chosen

    def package(self, model: Fitted, metrics: dict, ctx: RunContext) -> Artifact:
        recent, covisited, similar = (model.part(name) for name in ("recent", "covisits", "text"))
        tensors = {
            "weights": torch.from_numpy(model.model.weights),
            "service_ids": torch.tensor(model.service_ids),
            "counts": torch.from_numpy(model.counts.astype(np.float32)),
        }
        if isinstance(covisited, CoVisits):
            tensors.update(
                {
                    f"covisits_{key}": torch.from_numpy(a)
                    for key, a in covisits.arrays(covisited).items()
                }
            )
        if isinstance(similar, TextSimilarity):
            tensors.update(
                {f"text_{key}": torch.from_numpy(a) for key, a in text.arrays(similar).items()}
            )
        return Artifact(
            MODEL_NAME,
            tensors,
            {
                "parts": list(model.model.parts),
                "versions": model.versions,
                "split": model.split,
                "recency_decay": recent.decay if isinstance(recent, RecentHistory) else None,
                "covisits": asdict(covisited.setting) if isinstance(covisited, CoVisits) else None,
                "text_decay": similar.decay if isinstance(similar, TextSimilarity) else None,
            },
        )


def train(env: TrainingEnv, seed: int | None = None, progress: bool = False) -> PipelineOutcome:
    return HybridPipeline().run(env, seed, progress)
