"""`Hybrid` (top K) and `HybridRanking` (every candidate) for logged-in users: the learnt blend
of model.py over the live parts it was trained with. It is ready only while every part's version
is the one its weights were learnt on (a newer NCF, EASE, iALS or embeddings version makes it
wait for the next Hybrid training)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from recommender.engines.autoencoders import EMBEDDINGS_MODEL
from recommender.engines.autoencoders import embeddings as emb
from recommender.engines.base.engine import ServingDeps
from recommender.engines.base.scoring import ScoringComponent, ScoringEngine, offline_test_metrics
from recommender.engines.ease import MODEL_NAME as EASE
from recommender.engines.ease import inference as ease_inference
from recommender.engines.hybrid import MODEL_NAME, covisits, text
from recommender.engines.hybrid.covisits import CoVisitSetting
from recommender.engines.hybrid.model import (
    ContentSimilarity,
    HybridComponent,
    RecentHistory,
    popularity,
)
from recommender.engines.ials import MODEL_NAME as IALS
from recommender.engines.ials import inference as ials_inference
from recommender.engines.ncf import MODEL_NAME as NCF
from recommender.engines.ncf import inference as ncf_inference
from recommender.evaluation.metrics import DEFAULT_KS
from recommender.id_index import IdIndex
from recommender.model_store.versions import NoModelError, StoredModel, stamp_name
from recommender.store import stamps


def build(stored: StoredModel, live: dict[str, ScoringComponent | None]) -> HybridComponent:
    versions = stored.config["versions"]
    service_ids = stored.tensors["service_ids"].numpy()
    services = IdIndex(service_ids)
    parts: dict[str, ScoringComponent] = {}
    for name in stored.config["parts"]:
        if name == "popularity":
            parts[name] = popularity(service_ids, stored.tensors["counts"].numpy())
            continue
        if name == "covisits":
            setting = CoVisitSetting(**stored.config["covisits"])
            parts[name] = covisits.from_arrays(services, stored_arrays(stored, name), setting)
            continue
        if name == "text":
            decay = stored.config["text_decay"]
            parts[name] = text.from_arrays(services, stored_arrays(stored, name), decay)
            continue
        part = live.get(EASE if name == "recent" else name)
        if part is None or part.version != versions[name]:
            raise NoModelError(f"Hybrid v{stored.version} needs {name} v{versions[name]} live")
        parts[name] = (
            RecentHistory(part, stored.config["recency_decay"]) if name == "recent" else part
        )
    return HybridComponent(stored.version, parts, stored.tensors["weights"].numpy())


def stored_arrays(stored: StoredModel, part: str) -> dict[str, np.ndarray]:
    """The arrays the version holds for `part` (its tensors named `part`_...)."""
    prefix = f"{part}_"
    return {
        key[len(prefix) :]: tensor.numpy()
        for key, tensor in stored.tensors.items()
        if key.startswith(prefix)
    }


def live_component(deps: ServingDeps) -> HybridComponent | None:
    # The parts are fetched first: the cache must not be re-entered from inside a build.
    embeddings = emb.cached_embeddings(deps.models)
    live = {
        NCF: ncf_inference.component(deps),
        EASE: ease_inference.live_component(deps),
        IALS: ials_inference.live_component(deps),
        "content": None
        if embeddings is None
        else ContentSimilarity(embeddings.services, embeddings.version),
    }
    # The catalogue too: NCF's and the embeddings' components are rebuilt on a new catalogue
    # without a new model version, and the blend must hold those, not the ones it began with.
    depends_on = (
        stamps.CATALOGUE,
        *(stamp_name(name) for name in (NCF, EASE, IALS, EMBEDDINGS_MODEL)),
    )
    return deps.models.get(MODEL_NAME, lambda stored: build(stored, live), depends_on=depends_on)


def offline_metrics(deps: ServingDeps, ks: Sequence[int] = DEFAULT_KS, seed=None) -> dict:
    """Test metrics of the live Hybrid as served (see base/scoring.py)."""
    return offline_test_metrics(deps, live_component(deps), "Hybrid", ks, seed)


class Hybrid(ScoringEngine):
    long = "Recommended by a blend of what users like you ordered and what fits your interests."
    short = "Blended for you"

    def component(self) -> HybridComponent | None:
        return live_component(self.deps)


def build_engine(deps: ServingDeps) -> Hybrid:
    return Hybrid(deps)
