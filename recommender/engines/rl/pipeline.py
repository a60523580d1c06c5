"""Training stage "rl": SARS -> TD3 actors for both panels -> held-out evaluation -> promotion.

extract     bring the stored SARS up to date (recommender.sessions, incremental); when fewer
            than `min_real_sarses` exist, generate `synthetic_sessions` sessions (at most
            `synthetic_sessions_per_user` per user) on the live catalogue instead, in memory;
            read the users' and services' facets once. The SARS states also keep the search
            data; the actor does not read it (the candidates already are the search's result).
prepare     time split (the latest `held_out` share is held out); service features (live
            embeddings + training popularity); replay data per K; the engagement simulator,
            fit on the training split only.
train       TD3 for K=3 (panel v1) and K=2 (panel v2), seeded.
evaluate    per panel, on the held-out logged-in sessions: simulated reward and hr@K of RL,
            NCF (when a live NCF model exists), Popularity (training counts) and Random.
validate    promoted only if, for both panels, RL beats Random and is not worse than
            Popularity (minus `popularity_margin`); otherwise rejected with the numbers.
The model ("rl"): both actors' state dicts, the training popularity and the embeddings version
the actors were trained in (serving uses that version: embedding spaces change on retraining).
Settings (app config): RL_MIN_REAL_SARSES, RL_SYNTHETIC_SESSIONS, RL_EPOCHS.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch

from recommender.engines.autoencoders import EMBEDDINGS_MODEL
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
from recommender.engines.rl import MODEL_NAME
from recommender.engines.rl.data import (
    SarsSet,
    ServiceSpace,
    Transitions,
    UserSpace,
    popularity_counts,
    right_aligned,
    time_split,
    transitions,
)
from recommender.engines.rl.evaluation import (
    Scorer,
    Sessions,
    engine_chooser,
    evaluate,
    popularity_chooser,
    random_chooser,
    rl_chooser,
)
from recommender.engines.rl.features import log_popularity
from recommender.engines.rl.networks import Shape
from recommender.engines.rl.simulator import EngagementModel, Facets, pair_features
from recommender.engines.rl.synthetic import synthetic_sarses
from recommender.engines.rl.td3 import FitResult, Matrices, TD3Config, fit
from recommender.models.activity import Recommendation
from recommender.models.marketplace import RECOMMENDABLE_STATUSES, Service, User
from recommender.models.sars import Sars
from recommender.panels import PANEL_OF_K
from recommender.sessions import regenerate_sarses
from recommender.settings import Settings
from recommender.store import get_db

USER_FIELDS = ("categories", "scientific_domains", "accessed_services")
SERVICE_FIELDS = ("name", "status", "categories", "scientific_domains")
SARS_FIELDS = {
    "state.user": 1,
    "state.services_history": 1,
    "state.candidates": 1,
    "action": 1,
    "reward": 1,
    "next_state.services_history": 1,
    "terminal": 1,
    "source_recommendation": 1,
}


@dataclass(frozen=True)
class RLConfig:
    min_real_sarses: int = 2500
    synthetic_sessions: int = 20_000  # at most; fewer for small catalogues (below)
    synthetic_sessions_per_user: int = 20
    held_out: float = 0.2
    history_len: int = 5
    min_transitions: int = 20  # per panel, in the training split
    popularity_margin: float = 0.0
    td3: TD3Config = field(default_factory=TD3Config)

    @classmethod
    def from_settings(cls, settings: Settings) -> RLConfig:
        """Defaults overridden by RL_MIN_REAL_SARSES, RL_SYNTHETIC_SESSIONS, RL_EPOCHS."""
        base = cls()
        return replace(
            base,
            min_real_sarses=settings.RL_MIN_REAL_SARSES,
            synthetic_sessions=settings.RL_SYNTHETIC_SESSIONS,
            td3=replace(base.td3, epochs=settings.RL_EPOCHS),
        )


@dataclass
class Raw:
    sars: SarsSet
    source: str  # "real" or "synthetic"
    embeddings: Embeddings
    users: dict[int, dict]
    services: dict[int, dict]


@dataclass
class Prepared:
    services: ServiceSpace
    users: UserSpace
    matrices: Matrices
    train: dict[int, Transitions]
    held_out: dict[int, Sessions]
    scorer: Scorer
    popularity_ids: np.ndarray
    popularity: np.ndarray
    embeddings_version: int
    source: str


@dataclass
class Trained:
    fits: dict[int, FitResult]  # by K
    popularity_ids: np.ndarray
    popularity: np.ndarray
    embeddings_version: int
    source: str


def _read(document, query: dict, fields: dict) -> list[dict]:
    return list(get_db()[document._get_collection_name()].find(query, fields))


def read_real_sarses() -> SarsSet:
    docs = _read(Sars, {"synthetic": False}, SARS_FIELDS)
    wanted = {d.get("source_recommendation") for d in docs}
    times = {
        d["_id"]: d.get("timestamp")
        for d in _read(Recommendation, {}, {"timestamp": 1})
        if d["_id"] in wanted
    }
    return SarsSet.from_docs(docs, times)


class RLPipeline(Pipeline[Raw, Prepared, Trained]):
    name = "RL"
    requires = (EMBEDDINGS_MODEL,)

    def __init__(self, config: RLConfig | None = None):
        self.config = config or RLConfig()

    def extract(self, ctx: RunContext) -> Raw:
        ctx.details["regeneration"] = regenerate_sarses()
        real = get_db()[Sars._get_collection_name()].count_documents({"synthetic": False})
        ctx.details["real_sarses"] = real
        embeddings = live_embeddings()
        if embeddings is None:
            raise DataValidationError("no live embeddings")
        # Each read once: the facets feed the simulator and, if needed, the session generator.
        users = {d.pop("_id"): d for d in _read(User, {}, {field: 1 for field in USER_FIELDS})}
        services = {
            d.pop("_id"): d for d in _read(Service, {}, {field: 1 for field in SERVICE_FIELDS})
        }
        if real >= self.config.min_real_sarses:
            sars, source = read_real_sarses(), "real"
        else:
            sessions = min(
                self.config.synthetic_sessions,
                self.config.synthetic_sessions_per_user * max(len(users), 1),
            )
            docs, times = synthetic_sarses(sessions, ctx.seed, users, services)
            sars, source = SarsSet.from_docs(docs, times), "synthetic"
            ctx.details["synthetic_sessions"] = sessions
        ctx.details.update(source=source, sarses=len(sars))
        return Raw(sars, source, embeddings, users, services)

    def validate_data(self, raw: Raw, ctx: RunContext) -> None:
        if not any(v.any() for v in raw.sars.values):
            raise DataValidationError(
                f"none of the {len(raw.sars)} {raw.source} SARS has a clicked or ordered service"
            )
        for k, panel in PANEL_OF_K.items():
            n = len(raw.sars.with_k(k))
            if n * (1 - self.config.held_out) < self.config.min_transitions:
                raise DataValidationError(
                    f"too few {raw.source} SARS with {k} services for panel {panel}: {n}"
                )

    def prepare(self, raw: Raw, ctx: RunContext) -> Prepared:
        cfg = self.config
        train_index, test_index = time_split(raw.sars.times, cfg.held_out)
        train, test = raw.sars.subset(train_index), raw.sars.subset(test_index)
        service_ids = np.unique(
            np.concatenate(
                [
                    raw.embeddings.services.ids,
                    np.fromiter(raw.services, np.int64, len(raw.services)),
                    *(np.asarray(a, np.int64) for a in raw.sars.actions),
                ]
            )
        )
        # Popularity: training clicks and orders, plus the users' accessed services.
        clicked = [np.asarray(list(c), np.int64) for c in train.clicked()]
        accessed = [
            np.asarray(u.get("accessed_services") or (), np.int64) for u in raw.users.values()
        ]
        counts = popularity_counts(service_ids, [*clicked, *accessed])
        popularity = log_popularity(counts)
        services = ServiceSpace.build(service_ids, raw.embeddings.services.rows, popularity)
        users = UserSpace.build(raw.sars.users, raw.embeddings.users.rows, raw.embeddings.users.dim)
        matrices = Matrices(torch.from_numpy(users.matrix), torch.from_numpy(services.features))
        recommendable = np.array(
            sorted(i for i, d in raw.services.items() if d.get("status") in RECOMMENDABLE_STATUSES),
            dtype=np.int64,
        )
        user_accessed = {i: u.get("accessed_services") or () for i, u in raw.users.items()}
        facets = Facets.build(users.ids, services.ids, raw.users, raw.services)
        scorer = Scorer(self._fit_simulator(train, services, users, facets, ctx), facets, services)
        data = Prepared(
            services=services,
            users=users,
            matrices=matrices,
            train={
                k: transitions(train, k, cfg.history_len, services, users.rows) for k in PANEL_OF_K
            },
            held_out={
                k: Sessions.build(
                    test, k, cfg.history_len, services, users, recommendable, user_accessed
                )
                for k in PANEL_OF_K
            },
            scorer=scorer,
            popularity_ids=service_ids,
            popularity=popularity,
            embeddings_version=raw.embeddings.version,
            source=raw.source,
        )
        ctx.details.update(
            train_sarses=len(train),
            held_out_sarses=len(test),
            transitions={PANEL_OF_K[k]: len(t) for k, t in data.train.items()},
            held_out_sessions={PANEL_OF_K[k]: len(s) for k, s in data.held_out.items()},
            services=len(service_ids),
        )
        return data

    def _fit_simulator(self, train: SarsSet, services, users, facets, ctx) -> EngagementModel:
        """The simulator, fit on every (training transition, shown service) pair."""
        lengths = np.fromiter((len(a) for a in train.actions), np.int64, len(train))
        shown = np.concatenate([np.asarray(a, np.int64) for a in train.actions])
        values = np.concatenate(train.values).astype(np.float32)
        history = right_aligned(train.history, self.config.history_len, services.rows)
        x = pair_features(
            facets,
            services.features,
            services.popularity,
            np.repeat(users.rows(train.users), lengths),
            np.repeat(history, lengths, axis=0),
            services.rows(shown),
        )
        model = EngagementModel(ctx.seed).fit(x, values)
        ctx.details["simulator_pairs"] = len(values)
        return model

    def train(self, data: Prepared, ctx: RunContext) -> Trained:
        results = {}
        for k, panel in PANEL_OF_K.items():
            shape = Shape(
                k=k,
                user_dim=data.users.matrix.shape[1],
                service_dim=data.services.dim,
                history_len=self.config.history_len,
            )
            bar = ctx.bar(range(self.config.td3.epochs), f"TD3 {panel}")
            progress = iter(bar)

            def on_epoch(epoch: int, critic: float, actor: float, panel=panel, progress=progress):
                next(progress, None)
                ctx.report.scalar(f"{panel}/critic_loss", critic, epoch)
                ctx.report.scalar(f"{panel}/actor_loss", actor, epoch)

            results[k] = fit(
                data.train[k],
                data.matrices,
                shape,
                self.config.td3,
                ctx.seed + k,
                ctx.device,
                on_epoch,
            )
            ctx.details[panel] = {
                "seconds": results[k].seconds,
                "critic_loss": results[k].critic_losses,
                "actor_loss": results[k].actor_losses,
                "shape": shape.as_dict(),
            }
        return Trained(
            results, data.popularity_ids, data.popularity, data.embeddings_version, data.source
        )

    def evaluate(self, model: Trained, data: Prepared, ctx: RunContext) -> dict:
        ncf = ctx.env.engines.get("NCF")  # the baseline, when it is served and trained
        ncf = ncf if ncf is not None and ncf.is_ready()[0] else None
        metrics: dict[str, Any] = {
            "source": data.source,
            "embeddings_version": data.embeddings_version,
        }
        for k, panel in PANEL_OF_K.items():
            sessions = data.held_out[k]
            choosers = {
                "rl": rl_chooser(model.fits[k].actor, sessions, data.services, data.users, k),
                "popularity": popularity_chooser(data.services, k),
                "random": random_chooser(k, ctx.seed),
            }
            if ncf is not None:
                choosers["ncf"] = engine_chooser(ncf, sessions, data.services, k)
            metrics[panel] = {
                "sessions": len(sessions),
                **evaluate(sessions, choosers, data.scorer, k, ctx.seed),
            }
        ctx.details.update(metrics)
        return metrics

    def validate_model(self, model, metrics: dict, ctx: RunContext) -> None:
        reasons = []
        for panel in PANEL_OF_K.values():
            m = metrics[panel]
            rl, random, popular = (m[e]["reward"] for e in ("rl", "random", "popularity"))
            if m["sessions"] == 0:
                reasons.append(f"{panel}: no held-out logged-in sessions to evaluate on")
            elif rl <= random:
                reasons.append(f"{panel}: RL reward {rl:.4f} does not beat Random {random:.4f}")
            elif rl < popular - self.config.popularity_margin:
                reasons.append(f"{panel}: RL reward {rl:.4f} is below Popularity {popular:.4f}")
        if reasons:
            raise ModelValidationError("; ".join(reasons))

    def package(self, model: Trained, metrics: dict, ctx: RunContext) -> Artifact:
        return Artifact(
            MODEL_NAME,
            {
                "actors": {PANEL_OF_K[k]: fit.actor.state_dict() for k, fit in model.fits.items()},
                "popularity": {
                    "ids": torch.from_numpy(model.popularity_ids),
                    "values": torch.from_numpy(model.popularity),
                },
            },
            config={
                "shapes": {
                    PANEL_OF_K[k]: fit.actor.shape.as_dict() for k, fit in model.fits.items()
                },
                "embeddings_version": model.embeddings_version,
                "history_len": self.config.history_len,
                "source": model.source,
                "td3": self.config.td3.as_dict(),
            },
        )


def train(env: TrainingEnv, seed: int | None = None, progress: bool = False) -> PipelineOutcome:
    return RLPipeline(RLConfig.from_settings(env.settings)).run(env, seed, progress)
