"""Training stage "rl": logged requests -> an actor-critic per panel -> the gate.

extract     bring the stored SARS up to date (recommender.sessions, incremental); when fewer
            than `min_real_sarses` exist, generate `synthetic_sessions` sessions (at most
            `synthetic_sessions_per_user` per user) on the live catalogue instead, in memory.
            Each SARS keeps its recommendation's timestamp and logging propensities (C1).
prepare     three splits (data.split): training; validation (other users AND later time), for
            every choice of settings; test (the latest sessions), read once by the gate. The
            service table (live embeddings, declared interests, training popularity), the
            logged requests per panel, and the simulators (the position-aware reward model of
            candidate features): one fit on every request of the validation period for
            choosing settings, one on the test period for the gate, never on the data RL learns
            from (a simulator fit on the training logs shares their noise, and the actor
            learns to exploit it).
train       the actor's starting direction: a click model's over the candidate features, fit
            on the training split's showings and shrunk towards the rule (prior.py); then per
            panel and point of `grid` (settings over the base `agent`), `ensemble`
            actor-critics (training.py) from that start and different seeds, each keeping its
            best epoch on validation, averaged into one actor (networks.average); the
            ensemble with the best validation value is kept, unless the rule's own ranking
            (training.untrained_actor with the rule's direction) validates higher: then that
            is kept (and its gate rejects it).
evaluate    per panel, on the test split: RL against NCF (when a live NCF model exists), the
            interest-overlap rule, Popularity and Random. Evidence: off-policy estimates (DR
            decides; IPS and SNIPS recorded) when the data are real and at least
            `min_logged_for_ope` test requests carry logged propensities; the simulator
            otherwise. Values, intervals and RL's margins go in the pipeline metadata.
validate    promoted only if, for both panels, the 95% interval of RL's margin over every
            baseline lies above `margin`; otherwise rejected with the numbers.
The model ("rl"): both actors' state dicts, the per-service statistics (popularity, value rate)
and the embeddings version the actors were trained in (serving uses that version: embedding
spaces change on retraining). Training and the gate read statistics counted on the training
split only; the model keeps them counted on every logged request (serving_statistics).
Settings (app config): RL_MIN_REAL_SARSES, RL_SYNTHETIC_SESSIONS, RL_EPOCHS,
RL_MIN_LOGGED_FOR_OPE, RL_MARGIN.
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
from recommender.engines.rl.candidates import (
    FEATURES,
    ServiceTable,
    Tallies,
    interest_matrix,
    log_popularity,
    value_rates,
    vocabulary_of,
)
from recommender.engines.rl.data import (
    Requests,
    SarsSet,
    ServiceSpace,
    UserSpace,
    popularity_counts,
    requests,
    split,
    value_sums,
)
from recommender.engines.rl.evaluation import (
    Chooser,
    Sessions,
    engine_chooser,
    evaluate,
    fit_simulator,
    margins,
    popularity_chooser,
    random_chooser,
    rl_chooser,
    rule_chooser,
)
from recommender.engines.rl.networks import Actor, average
from recommender.engines.rl.prior import fitted_prior
from recommender.engines.rl.synthetic import synthetic_sarses
from recommender.engines.rl.training import (
    AgentConfig,
    FitResult,
    Validate,
    fit,
    untrained_actor,
)
from recommender.evaluation.offpolicy import PositionRewardModel
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
    "source_recommendation": 1,
}
MEMBER_SEEDS = 7919  # seed step between an ensemble's members
BASELINES = {"ncf": "NCF", "rule": "InterestRule", "popularity": "Popularity", "random": "Random"}


@dataclass(frozen=True)
class RLConfig:
    min_real_sarses: int = 2500
    synthetic_sessions: int = 20_000  # at most; fewer for small catalogues (below)
    synthetic_sessions_per_user: int = 20
    history_len: int = 5
    validation_users: float = 0.25  # share of users kept for validation only
    validation: float = 0.2  # time shares of the splits
    test: float = 0.2
    min_requests: int = 20  # per panel, in the training split
    min_logged_for_ope: int = 2000  # test requests with logged propensities for OPE to decide
    margin: float = 0.0  # RL's value must beat every baseline's by more than this
    agent: AgentConfig = field(default_factory=AgentConfig)
    # Settings tried over `agent`, each chosen (with its epoch) on the validation split.
    grid: tuple[dict, ...] = (
        {"temperature": 0.1, "imitation": 0.0},
        {"temperature": 0.1, "imitation": 1.0},
    )
    # Actor-critics per grid point, from different seeds, served as one averaged actor: which
    # epoch and direction a single run ends in varies from seed to seed, their mean less.
    ensemble: int = 3

    @classmethod
    def from_settings(cls, settings: Settings) -> RLConfig:
        base = cls()
        return replace(
            base,
            min_real_sarses=settings.RL_MIN_REAL_SARSES,
            synthetic_sessions=settings.RL_SYNTHETIC_SESSIONS,
            min_logged_for_ope=settings.RL_MIN_LOGGED_FOR_OPE,
            margin=settings.RL_MARGIN,
            agent=replace(base.agent, epochs=settings.RL_EPOCHS),
        )


@dataclass
class Raw:
    sars: SarsSet
    source: str  # "real" or "synthetic"
    embeddings: Embeddings
    users: dict[int, dict]
    services: dict[int, dict]


@dataclass
class Panel:
    """One panel size's splits and the simulators of its validation and test splits."""

    train: Requests
    validation: Sessions
    test: Sessions
    validation_simulator: PositionRewardModel | None  # None: nothing clicked there
    test_simulator: PositionRewardModel | None


@dataclass
class Prepared:
    services: ServiceSpace
    users: UserSpace
    panels: dict[int, Panel]  # by K
    accessed: np.ndarray  # per service row: how many users accessed it (the rule's popularity)
    tallies: Tallies  # the training statistics' counts (the training split's own outcomes)
    serving_statistics: dict[str, np.ndarray]  # STATISTICS counted on every logged request
    embeddings_version: int
    source: str
    off_policy: bool  # the gate's evidence: off-policy estimates, else the simulator
    validation_off_policy: bool  # validation requests carry logged propensities


@dataclass
class Choice:
    """One grid point's ensemble: the averaged actor, its validation value and its members."""

    actor: Actor
    config: AgentConfig
    validation: float
    members: list[FitResult]


@dataclass
class Trained:
    choices: dict[int, Choice]  # by K
    service_ids: np.ndarray
    statistics: dict[str, np.ndarray]  # STATISTICS, aligned with service_ids
    embeddings_version: int
    source: str


def _read(document, query: dict, fields: dict) -> list[dict]:
    return list(get_db()[document._get_collection_name()].find(query, fields))


def read_real_sarses() -> SarsSet:
    docs = _read(Sars, {"synthetic": False}, SARS_FIELDS)
    wanted = {d.get("source_recommendation") for d in docs}
    recs = {
        d["_id"]: d
        for d in _read(Recommendation, {}, {"timestamp": 1, "propensities": 1})
        if d["_id"] in wanted
    }
    return SarsSet.from_docs(docs, recs)


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
            docs, recs = synthetic_sarses(sessions, ctx.seed, users, services)
            sars, source = SarsSet.from_docs(docs, recs), "synthetic"
            ctx.details["synthetic_sessions"] = sessions
        ctx.details.update(source=source, sarses=len(sars))
        return Raw(sars, source, embeddings, users, services)

    def validate_data(self, raw: Raw, ctx: RunContext) -> None:
        if not any(v.any() for v in raw.sars.values):
            raise DataValidationError(
                f"none of the {len(raw.sars)} {raw.source} SARS has a clicked or ordered service"
            )

    def prepare(self, raw: Raw, ctx: RunContext) -> Prepared:
        cfg = self.config
        parts = split(raw.sars, cfg.validation_users, cfg.validation, cfg.test, ctx.seed)
        train = raw.sars.subset(parts.train)
        service_ids = np.unique(
            np.concatenate(
                [
                    raw.embeddings.services.ids,
                    np.fromiter(raw.services, np.int64, len(raw.services)),
                    *(np.asarray(a, np.int64) for a in raw.sars.actions),
                ]
            )
        )
        services, users, tallies = self._spaces(raw, train, service_ids)
        accessed = {i: u.get("accessed_services") or () for i, u in raw.users.items()}
        recommendable = np.array(
            sorted(i for i, d in raw.services.items() if d.get("status") in RECOMMENDABLE_STATUSES),
            dtype=np.int64,
        )
        panels = {}
        for k, panel in PANEL_OF_K.items():

            def build(index: np.ndarray, k: int = k) -> Sessions:
                part = raw.sars.subset(index)
                built = requests(part, k, cfg.history_len, services, users, accessed, recommendable)
                part = part.subset(part.with_k(k))
                own = [accessed.get(int(u), ()) for u in part.users]
                return Sessions(built, part.users, own)

            train_requests = build(parts.train).requests
            if len(train_requests) < cfg.min_requests:
                raise DataValidationError(
                    f"too few {raw.source} logged-in requests with {k} services for panel "
                    f"{panel} in the training split: {len(train_requests)}"
                )
            panels[k] = Panel(
                train=train_requests,
                validation=build(parts.validation),
                test=build(parts.test),
                validation_simulator=self._simulator(
                    build(parts.validation_period).requests, users, services.table
                ),
                test_simulator=self._simulator(
                    build(parts.test_period).requests, users, services.table
                ),
            )
        recorded = int(np.count_nonzero(raw.sars.recorded[parts.test]))
        off_policy = raw.source == "real" and recorded >= cfg.min_logged_for_ope
        # Settings are chosen on the same kind of evidence the gate uses, by the same rule
        # (off-policy estimates from fewer requests are too noisy to rank settings by).
        validation_recorded = int(np.count_nonzero(raw.sars.recorded[parts.validation]))
        validation_off_policy = (
            raw.source == "real" and validation_recorded >= cfg.min_logged_for_ope
        )
        ctx.details.update(
            split={name: len(getattr(parts, name)) for name in ("train", "validation", "test")},
            requests={
                PANEL_OF_K[k]: {
                    "train": len(p.train),
                    "validation": len(p.validation),
                    "test": len(p.test),
                }
                for k, p in panels.items()
            },
            test_with_propensities=recorded,
            evidence="off-policy" if off_policy else "simulator",
            validation_evidence="off-policy" if validation_off_policy else "simulator",
            services=len(service_ids),
        )
        return Prepared(
            services,
            users,
            panels,
            popularity_counts(services.ids, accessed_lists(raw.users)),
            tallies,
            serving_statistics(raw, service_ids),
            raw.embeddings.version,
            raw.source,
            off_policy,
            validation_off_policy,
        )

    @staticmethod
    def _spaces(
        raw: Raw, train: SarsSet, service_ids: np.ndarray
    ) -> tuple[ServiceSpace, UserSpace, Tallies]:
        events, earned, showings = statistic_counts(raw, train, service_ids)
        service_docs = [raw.services.get(int(i)) for i in service_ids]
        vocabulary = vocabulary_of(service_docs)
        table = ServiceTable.build(
            raw.embeddings.services.rows(service_ids),
            interest_matrix(service_docs, vocabulary)[1:],
            log_popularity(events),
            value_rates(earned, showings),
        )
        user_ids = np.unique(np.concatenate([raw.sars.users, np.fromiter(raw.users, np.int64)]))
        user_ids = user_ids[user_ids >= 0]
        embedded = (
            raw.embeddings.users.rows(user_ids)
            if len(user_ids)
            else np.zeros((0, raw.embeddings.users.dim), np.float32)
        )
        users = UserSpace(
            user_ids,
            torch.from_numpy(
                np.concatenate([np.zeros((1, raw.embeddings.users.dim), np.float32), embedded])
            ),
            torch.from_numpy(
                interest_matrix([raw.users.get(int(u)) for u in user_ids], vocabulary)
            ),
        )
        return ServiceSpace(service_ids, table), users, Tallies.build(events, earned, showings)

    @staticmethod
    def _simulator(logged: Requests, users: UserSpace, table: ServiceTable):
        if not (logged.values > 0).any():
            return None
        return fit_simulator(logged, users, table)

    def train(self, data: Prepared, ctx: RunContext) -> Trained:
        results = {}
        trains = {k: panel.train for k, panel in data.panels.items()}
        prior = fitted_prior(trains, data.users, data.services.table, data.tallies, ctx.seed)
        ctx.details["prior"] = prior.as_dict()
        for k, panel in PANEL_OF_K.items():
            p = data.panels[k]

            def validate(actor: Actor, p=p, k=k) -> float:
                return self._value(actor, data, p.validation, p.validation_simulator, k, ctx.seed)

            tried = [
                self._ensemble(
                    replace(self.config.agent, **point), data, k, validate, ctx, prior.direction
                )
                for point in self.config.grid
            ]
            # The floor: the rule's own ranking, served when no trained ensemble validates
            # above it (its gate then rejects it: it cannot beat the rule).
            rule = untrained_actor(k, data.users, data.services.table)
            floor = Choice(rule, self.config.agent, validate(rule), [])
            best = max([floor, *tried], key=lambda choice: choice.validation)
            results[k] = best
            ctx.details[panel] = {
                "chosen": {
                    **{key: getattr(best.config, key) for key in self.config.grid[0]},
                    "epochs": [member.epoch for member in best.members],
                    "rule": best is floor,
                },
                "rule_validation": floor.validation,
                "grid": [
                    {
                        **point,
                        "validation": choice.validation,
                        "epochs": [member.epoch for member in choice.members],
                        "member_validation": [m.validation[m.epoch] for m in choice.members],
                        "seconds": sum(member.seconds for member in choice.members),
                    }
                    for point, choice in zip(self.config.grid, tried, strict=True)
                ],
                "critic_loss": [member.critic_losses for member in best.members],
                "actor_loss": [member.actor_losses for member in best.members],
            }
        return Trained(
            results,
            data.services.ids,
            data.serving_statistics,
            data.embeddings_version,
            data.source,
        )

    def _ensemble(
        self,
        config: AgentConfig,
        data: Prepared,
        k: int,
        validate: Validate,
        ctx: RunContext,
        prior: tuple[float, ...],
    ) -> Choice:
        """RLConfig.ensemble actor-critics of one grid point, each from its own seed and with
        its own best epoch, averaged into one actor (networks.average), validated as such."""
        panel = PANEL_OF_K[k]
        members = []
        for member in range(self.config.ensemble):
            bar = iter(ctx.bar(range(config.epochs), f"actor-critic {panel} {member}"))

            def on_epoch(epoch: int, critic: float, actor: float, bar=bar, member=member):
                next(bar, None)
                ctx.report.scalar(f"{panel}/{member}/critic_loss", critic, epoch)
                ctx.report.scalar(f"{panel}/{member}/actor_loss", actor, epoch)

            members.append(
                fit(
                    data.panels[k].train,
                    data.users,
                    data.services.table,
                    k,
                    config,
                    ctx.seed + k + MEMBER_SEEDS * member,
                    validate,
                    on_epoch,
                    data.tallies,
                    prior,
                )
            )
        actor = average([member.actor for member in members])
        return Choice(actor, config, validate(actor), members)

    def _value(self, actor, data: Prepared, sessions: Sessions, simulator, k: int, seed: int):
        """RL's validation value (the evidence the gate will use), 0 without sessions."""
        if len(sessions) == 0 or simulator is None:
            return 0.0
        result = evaluate(
            sessions,
            {"rl": rl_chooser(actor, data.services.table, data.users, k)},
            simulator,
            data.users,
            data.services.table,
            k,
            seed,
            data.validation_off_policy,
        )
        return result["policies"]["rl"]["reward"]

    def choosers(
        self, model: Trained, data: Prepared, sessions: Sessions, k: int, ctx
    ) -> dict[str, Chooser]:
        table = data.services.table
        out: dict[str, Chooser] = {"rl": rl_chooser(model.choices[k].actor, table, data.users, k)}
        for name, served in BASELINES.items():
            engine = ctx.env.engines.get(served)
            if name in ("ncf", "rule") and engine is not None and engine.is_ready()[0]:
                out[name] = engine_chooser(engine, sessions, data.services, k)
        out.setdefault("rule", rule_chooser(table, data.users, data.accessed, k))
        out["popularity"] = popularity_chooser(table, k)
        out["random"] = random_chooser(k, ctx.seed)
        return out

    def evaluate(self, model: Trained, data: Prepared, ctx: RunContext) -> dict:
        metrics: dict[str, Any] = {
            "source": data.source,
            "embeddings_version": data.embeddings_version,
            "evidence": "off-policy" if data.off_policy else "simulator",
            "features": list(FEATURES),
        }
        for k, panel in PANEL_OF_K.items():
            p = data.panels[k]
            if len(p.test) == 0 or p.test_simulator is None:
                metrics[panel] = {"sessions": len(p.test)}
                continue
            choosers = self.choosers(model, data, p.test, k, ctx)
            result = evaluate(
                p.test,
                choosers,
                p.test_simulator,
                data.users,
                data.services.table,
                k,
                ctx.seed,
                data.off_policy,
            )
            baselines = [name for name in BASELINES if name in choosers]
            metrics[panel] = {
                "sessions": len(p.test),
                **result["policies"],
                "margins": margins(result["per_session"], baselines, ctx.seed),
            }
        ctx.details.update(metrics)
        return metrics

    def validate_model(self, model, metrics: dict, ctx: RunContext) -> None:
        reasons = []
        for panel in PANEL_OF_K.values():
            m = metrics[panel]
            if m["sessions"] == 0 or "rl" not in m:
                reasons.append(f"{panel}: no held-out logged-in sessions to evaluate on")
                continue
            rl = m["rl"]["reward"]
            for name, served in BASELINES.items():
                if name not in m:
                    continue
                # Beating means the whole interval of RL's margin lies above RL_MARGIN: a
                # point estimate above it could be luck of the held-out sample.
                margin = m["margins"][name]
                low, high = margin["ci"]
                if low <= self.config.margin:
                    reasons.append(
                        f"{panel}: RL reward {rl:.4f} does not beat {served} "
                        f"{m[name]['reward']:.4f} (margin {margin['value']:+.4f}, "
                        f"95% CI [{low:+.4f}, {high:+.4f}])"
                    )
        if reasons:
            raise ModelValidationError("; ".join(reasons))

    def package(self, model: Trained, metrics: dict, ctx: RunContext) -> Artifact:
        chosen = {PANEL_OF_K[k]: choice for k, choice in model.choices.items()}
        return Artifact(
            MODEL_NAME,
            {
                "actors": {panel: c.actor.state_dict() for panel, c in chosen.items()},
                "statistics": {
                    "ids": torch.from_numpy(model.service_ids),
                    **{name: torch.from_numpy(v) for name, v in model.statistics.items()},
                },
            },
            config={
                "shapes": {panel: c.actor.shape.as_dict() for panel, c in chosen.items()},
                "embeddings_version": model.embeddings_version,
                "history_len": self.config.history_len,
                "source": model.source,
                "features": list(FEATURES),
                "agent": {panel: c.config.as_dict() for panel, c in chosen.items()},
            },
        )


def serving_statistics(raw: Raw, service_ids: np.ndarray) -> dict[str, np.ndarray]:
    """The statistics the served model keeps (aligned with `service_ids`): popularity and value
    rates counted on every logged request, validation and test periods included. Training and
    the gate use the training split's only (their evidence must not have been counted on);
    once settings are chosen and judged, serving gets the most data there is."""
    events, earned, showings = statistic_counts(raw, raw.sars, service_ids)
    return {"popularity": log_popularity(events), "value_rate": value_rates(earned, showings)}


def statistic_counts(
    raw: Raw, sars: SarsSet, service_ids: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per service (aligned with `service_ids`), counted on `sars`: popularity events (clicks
    and orders, plus the users' accessed services), value earned and times shown."""
    clicked = [np.asarray(list(c), np.int64) for c in sars.clicked()]
    events = popularity_counts(service_ids, [*clicked, *accessed_lists(raw.users)])
    return (events, *value_sums(service_ids, sars))


def accessed_lists(users: dict[int, dict]) -> list[np.ndarray]:
    return [np.asarray(u.get("accessed_services") or (), np.int64) for u in users.values()]


def train(env: TrainingEnv, seed: int | None = None, progress: bool = False) -> PipelineOutcome:
    return RLPipeline(RLConfig.from_settings(env.settings)).run(env, seed, progress)
