"""Training stage "champion": among the live versions of the personalised engines (NCF, Hybrid,
EASE, iALS) trained on the newest split, the one with the best gate NDCG@10 (validation users no
setting was chosen on; ties: that order) becomes the champion, stored as model "champion": its
engine's served names, serve factory, model version and the figures compared. Engines trained on
another split are not compared (their figures come from other users and negatives)."""

from __future__ import annotations

from dataclasses import dataclass

from recommender.engines import ease, hybrid, ials, ncf
from recommender.engines.auto import MODEL_NAME
from recommender.engines.base.collaborative import GATE_METRIC
from recommender.engines.base.outcome import PipelineOutcome
from recommender.engines.base.pipeline import (
    Artifact,
    DataValidationError,
    Pipeline,
    RunContext,
    TrainingEnv,
)
from recommender.model_store import versions as model_store

CONTENDERS = ((ncf.MODEL_NAME, ncf.SPEC), (hybrid.MODEL_NAME, hybrid.SPEC))
CONTENDERS += ((ease.MODEL_NAME, ease.SPEC), (ials.MODEL_NAME, ials.SPEC))


@dataclass(frozen=True)
class Contender:
    model: str
    version: int
    split: str
    gate: float
    created: float


def contenders() -> list[Contender]:
    found = []
    for model, _ in CONTENDERS:
        live = model_store.live_version(model)
        gate = (live.metrics.get("model") or {}).get("gate", {}) if live else {}
        if live is not None and GATE_METRIC in gate and live.config.get("split"):
            created = live.created_at.timestamp()
            found.append(
                Contender(model, live.version, live.config["split"], gate[GATE_METRIC], created)
            )
    return found


class ChampionPipeline(Pipeline[list, list, Contender]):
    name = "Champion"

    def extract(self, ctx: RunContext) -> list[Contender]:
        found = contenders()
        ctx.details["live"] = {c.model: {"version": c.version, GATE_METRIC: c.gate} for c in found}
        return found

    def validate_data(self, raw: list[Contender], ctx: RunContext) -> None:
        if not raw:
            raise DataValidationError("no personalised engine is live with gate metrics")

    def prepare(self, raw: list[Contender], ctx: RunContext) -> list[Contender]:
        newest = max(raw, key=lambda c: c.created).split
        ctx.details["split"] = newest
        return [c for c in raw if c.split == newest]

    def train(self, data: list[Contender], ctx: RunContext) -> Contender:
        best = data[0]
        for contender in data[1:]:
            if contender.gate > best.gate:
                best = contender
        ctx.details["chosen"] = best.model
        return best

    def evaluate(self, model: Contender, data: list[Contender], ctx: RunContext) -> dict:
        return {"compared": {c.model: c.gate for c in data}, "metric": f"gate {GATE_METRIC}"}

    def package(self, model: Contender, metrics: dict, ctx: RunContext) -> Artifact:
        spec = dict(CONTENDERS)[model.model]
        config = {
            "engine": spec.top_k,
            "ranking": spec.ranking,
            "serve": spec.serve,
            "model": model.model,
            "version": model.version,
            f"gate_{GATE_METRIC}": model.gate,
            "split": model.split,
        }
        return Artifact(MODEL_NAME, {}, config)


def train(env: TrainingEnv, seed: int | None = None, progress: bool = False) -> PipelineOutcome:
    return ChampionPipeline().run(env, seed, progress)
