"""Held-out evaluation: RL against NCF, Popularity and Random on the same sessions.

For each held-out transition every engine picks K services among the eligible candidates (the
recommendation's candidates that are still recommendable, minus the user's accessed services).
Two numbers per engine:
- reward: the mean simulated reward of its picks (simulator.py, fit on the training split);
- hr@K: the share of sessions with a clicked or ordered service where the engine's K picks
  include one of them.
Engines are scored on the logged-in sessions: RL, like NCF, only serves logged-in users
(anonymous visitors get Popularity). The logged recommendations are scored too, for reference.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from recommender.engines.base.engine import RecommendationContext
from recommender.engines.rl.data import SarsSet, ServiceSpace, UserSpace, right_aligned
from recommender.engines.rl.networks import Actor
from recommender.engines.rl.selection import choose
from recommender.engines.rl.simulator import EngagementModel, Facets, pair_features, sampled_rewards
from recommender.panels import PANEL_OF_K

CHUNK = 256
DRAWS = 16


@dataclass(frozen=True)
class Sessions:
    """Held-out transitions as arrays (rows into the service and user spaces)."""

    user_ids: np.ndarray  # -1: anonymous
    user_rows: np.ndarray
    history_rows: np.ndarray  # [B, N]
    allowed_rows: list[np.ndarray]  # eligible candidates per session
    clicked_rows: list[set[int]]
    logged_rows: np.ndarray  # [B, k], 0 where a logged service is unknown
    accessed: list[Sequence[int]]

    def __len__(self) -> int:
        return len(self.user_ids)

    @classmethod
    def build(
        cls,
        sars: SarsSet,
        k: int,
        history_len: int,
        services: ServiceSpace,
        users: UserSpace,
        recommendable: np.ndarray,
        accessed: dict[int, Sequence[int]],
    ) -> Sessions:
        keep = np.intersect1d(sars.with_k(k), np.flatnonzero(sars.users >= 0))
        part = sars.subset(keep)
        own = [accessed.get(int(u), ()) for u in part.users]
        allowed = []
        for candidates, mine in zip(part.candidates, own, strict=True):
            ids = np.unique(np.asarray(candidates, dtype=np.int64))
            ids = ids[np.isin(ids, recommendable) & ~np.isin(ids, np.asarray(mine, np.int64))]
            rows = services.rows(ids)
            allowed.append(rows[rows > 0])
        clicked = [{int(r) for r in services.rows(list(c)) if r} for c in part.clicked()]
        logged = np.array([a[:k] for a in part.actions], dtype=np.int64).reshape(-1, k)
        return cls(
            user_ids=part.users,
            user_rows=users.rows(part.users),
            history_rows=right_aligned(part.history, history_len, services.rows),
            allowed_rows=allowed,
            clicked_rows=clicked,
            logged_rows=services.rows(logged.reshape(-1)).reshape(-1, k),
            accessed=own,
        )

    def allowed_mask(self, index: np.ndarray, width: int) -> np.ndarray:
        mask = np.zeros((len(index), width), dtype=bool)
        for row, i in enumerate(index.tolist()):
            mask[row, self.allowed_rows[i]] = True
        return mask


# An engine for evaluation: (session indices, allowed mask [b, S + 1]) -> rows [b, k], -1: none.
Chooser = Callable[[np.ndarray, np.ndarray], np.ndarray]


def top_k(scores: np.ndarray, allowed: np.ndarray, k: int) -> np.ndarray:
    masked = np.where(allowed, scores, -np.inf)
    order = np.argsort(-masked, axis=1, kind="stable")[:, :k]
    return np.where(np.isfinite(np.take_along_axis(masked, order, axis=1)), order, -1)


def rl_chooser(
    actor: Actor, sessions: Sessions, services: ServiceSpace, users: UserSpace, k: int
) -> Chooser:
    user_matrix = torch.from_numpy(users.matrix)
    features = torch.from_numpy(services.features)

    def pick(index: np.ndarray, allowed: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            weights = actor(
                user_matrix[torch.from_numpy(sessions.user_rows[index])],
                features[torch.from_numpy(sessions.history_rows[index])],
            ).numpy()
        return choose(weights, services.features, allowed, k)[0]

    return pick


def popularity_chooser(services: ServiceSpace, k: int) -> Chooser:
    # Ties (unseen services) go to the lower id, as the Popularity engine breaks them.
    scores = services.popularity - 1e-9 * np.arange(len(services.popularity))
    return lambda index, allowed: top_k(np.broadcast_to(scores, allowed.shape), allowed, k)


def random_chooser(k: int, seed: int) -> Chooser:
    rng = np.random.default_rng(seed)
    return lambda index, allowed: top_k(rng.random(allowed.shape), allowed, k)


def engine_chooser(engine, sessions: Sessions, services: ServiceSpace, k: int) -> Chooser:
    """A live serving engine (NCF), asked one session at a time as serving would."""

    def pick(index: np.ndarray, allowed: np.ndarray) -> np.ndarray:
        out = np.full((len(index), k), -1, dtype=np.int64)
        for row, i in enumerate(index.tolist()):
            candidates = services.ids[sessions.allowed_rows[i] - 1]
            context = RecommendationContext(
                candidates=candidates,
                panel_id=PANEL_OF_K.get(k, "v1"),
                user_id=int(sessions.user_ids[i]),
                accessed_services=tuple(int(s) for s in sessions.accessed[i]),
            )
            chosen = services.rows(np.asarray(engine.recommend(context, k).services, np.int64))
            out[row, : len(chosen[:k])] = chosen[:k]
        return out

    return pick


@dataclass
class Scorer:
    simulator: EngagementModel
    facets: Facets
    services: ServiceSpace

    def rewards(self, sessions: Sessions, index: np.ndarray, rows: np.ndarray, uniforms):
        b, k = rows.shape
        valid = rows > 0
        flat = np.where(valid, rows, 0).reshape(-1)
        x = pair_features(
            self.facets,
            self.services.features,
            self.services.popularity,
            np.repeat(sessions.user_rows[index], k),
            np.repeat(sessions.history_rows[index], k, axis=0),
            flat,
        )
        probabilities = self.simulator.probabilities(x).reshape(b, k, -1)
        return sampled_rewards(probabilities, valid, uniforms)


def evaluate(
    sessions: Sessions, choosers: dict[str, Chooser], scorer: Scorer, k: int, seed: int
) -> dict[str, dict[str, float]]:
    """Per engine (plus "logged"): mean simulated reward, hr@k, and seconds per session."""
    n, width = len(sessions), len(scorer.services.features)
    uniforms = np.random.default_rng(seed).random((n, DRAWS, k))
    totals = {name: {"reward": 0.0, "hits": 0, "seconds": 0.0} for name in [*choosers, "logged"]}
    with_clicks = sum(1 for clicked in sessions.clicked_rows if clicked)
    for start in range(0, n, CHUNK):
        index = np.arange(start, min(start + CHUNK, n))
        allowed = sessions.allowed_mask(index, width)
        picks = {}
        for name, chooser in choosers.items():
            started = time.perf_counter()
            picks[name] = chooser(index, allowed)
            totals[name]["seconds"] += time.perf_counter() - started
        picks["logged"] = sessions.logged_rows[index]
        for name, rows in picks.items():
            totals[name]["reward"] += float(
                scorer.rewards(sessions, index, rows, uniforms[index]).sum()
            )
            totals[name]["hits"] += sum(
                1
                for row, i in zip(rows.tolist(), index.tolist(), strict=True)
                if sessions.clicked_rows[i] & set(row)
            )
    return {
        name: {
            "reward": t["reward"] / max(n, 1),
            f"hr@{k}": t["hits"] / max(with_clicks, 1),
            "ms_per_session": 1000 * t["seconds"] / max(n, 1),
        }
        for name, t in totals.items()
    }
