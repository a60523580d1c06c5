"""From SARS documents to the arrays TD3 trains on (service features: see features.py). Row 0 of
every feature matrix is a zero row: padding for short histories and missing services.

Everything is indexed, not copied: transitions hold row numbers into the user and service
matrices and batches gather from them, so 100k SARS cost a few MB.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from recommender.engines.rl.features import service_features
from recommender.sessions.rewards import combine, service_values

Rows = Callable[[Sequence[int] | np.ndarray], np.ndarray]  # ids -> embedding rows


@dataclass(frozen=True)
class ServiceSpace:
    """Known services: sorted ids and their feature rows (row 0: padding, then one per id)."""

    ids: np.ndarray
    features: np.ndarray  # float32 [len(ids) + 1, D]
    popularity: np.ndarray  # float32 [len(ids) + 1], in [0, 1]

    @classmethod
    def build(cls, ids: np.ndarray, rows: Rows, popularity: np.ndarray) -> ServiceSpace:
        ids = np.asarray(ids, dtype=np.int64)
        embedded = rows(ids)
        padded_pop = np.concatenate([[0.0], popularity]).astype(np.float32)
        features = service_features(embedded, popularity)
        padded = np.concatenate([np.zeros((1, features.shape[1]), np.float32), features])
        return cls(ids, padded, padded_pop)

    @property
    def dim(self) -> int:
        return self.features.shape[1]

    def rows(self, ids: np.ndarray) -> np.ndarray:
        """Row of each id (0 when unknown)."""
        ids = np.asarray(ids, dtype=np.int64)
        if len(self.ids) == 0:
            return np.zeros(ids.shape, dtype=np.int64)
        pos = np.minimum(np.searchsorted(self.ids, ids), len(self.ids) - 1)
        return np.where(self.ids[pos] == ids, pos + 1, 0)


def popularity_counts(ids: np.ndarray, events: Iterable[np.ndarray]) -> np.ndarray:
    """How often each of the sorted `ids` occurs in `events` (arrays of service ids)."""
    counts = np.zeros(len(ids), dtype=np.float64)
    for values in events:
        values = np.asarray(values, dtype=np.int64)
        if len(values) == 0 or len(ids) == 0:
            continue
        pos = np.minimum(np.searchsorted(ids, values), len(ids) - 1)
        np.add.at(counts, pos[ids[pos] == values], 1.0)
    return counts


@dataclass
class SarsSet:
    """Parsed SARS, one entry per transition (plain lists: they are ragged)."""

    users: np.ndarray  # int64, -1: anonymous
    history: list[list[int]]
    next_history: list[list[int]]
    candidates: list[list[int]]
    actions: list[list[int]]
    values: list[np.ndarray]  # per recommended service, in [0, 1]
    terminal: np.ndarray  # bool
    times: np.ndarray  # float64 seconds, for the time split

    def __len__(self) -> int:
        return len(self.users)

    @classmethod
    def from_docs(cls, docs: Sequence[Mapping], times: Mapping) -> SarsSet:
        """`times`: source_recommendation -> its timestamp (datetime)."""

        def seconds(key) -> float:
            value = times.get(key)
            return value.timestamp() if isinstance(value, dt.datetime) else 0.0

        def user(doc) -> int:
            value = (doc.get("state") or {}).get("user")
            return -1 if value is None else int(value)

        return cls(
            users=np.fromiter((user(d) for d in docs), dtype=np.int64, count=len(docs)),
            history=[list(d["state"].get("services_history") or ()) for d in docs],
            next_history=[
                list((d.get("next_state") or d["state"]).get("services_history") or ())
                for d in docs
            ],
            candidates=[list(d["state"].get("candidates") or ()) for d in docs],
            actions=[list(d.get("action") or ()) for d in docs],
            values=[service_values(d.get("reward") or ()) for d in docs],
            terminal=np.fromiter((bool(d.get("terminal")) for d in docs), bool, len(docs)),
            times=np.fromiter(
                (seconds(d.get("source_recommendation")) for d in docs), float, len(docs)
            ),
        )

    def subset(self, index: np.ndarray) -> SarsSet:
        pick = index.tolist()
        return SarsSet(
            users=self.users[index],
            history=[self.history[i] for i in pick],
            next_history=[self.next_history[i] for i in pick],
            candidates=[self.candidates[i] for i in pick],
            actions=[self.actions[i] for i in pick],
            values=[self.values[i] for i in pick],
            terminal=self.terminal[index],
            times=self.times[index],
        )

    def with_k(self, k: int) -> np.ndarray:
        """Indices of the transitions with at least `k` recommended services."""
        return np.flatnonzero(np.fromiter((len(a) >= k for a in self.actions), bool, len(self)))

    def clicked(self) -> list[set[int]]:
        """Per transition, the recommended services that were clicked or ordered."""
        return [
            {s for s, v in zip(a, vals, strict=True) if v > 0}
            for a, vals in zip(self.actions, self.values, strict=True)
        ]


def time_split(times: np.ndarray, held_out: float) -> tuple[np.ndarray, np.ndarray]:
    """(train, held-out) indices: the latest `held_out` share of transitions is held out."""
    order = np.argsort(times, kind="stable")
    n_test = round(len(order) * held_out)
    return np.sort(order[: len(order) - n_test]), np.sort(order[len(order) - n_test :])


def right_aligned(lists: Sequence[Sequence[int]], width: int, rows: Callable) -> np.ndarray:
    """[len(lists), width] rows of each list's last `width` ids, most recent last, 0-padded."""
    out = np.zeros((len(lists), width), dtype=np.int64)
    lengths = np.fromiter((min(len(x), width) for x in lists), np.int64, len(lists))
    if lengths.sum() == 0:
        return out
    flat = np.fromiter(
        (s for x, n in zip(lists, lengths, strict=True) for s in x[len(x) - n :]),
        dtype=np.int64,
        count=int(lengths.sum()),
    )
    owners = np.repeat(np.arange(len(lists)), lengths)
    starts = np.cumsum(lengths) - lengths
    cols = width - lengths[owners] + (np.arange(len(flat)) - starts[owners])
    out[owners, cols] = rows(flat)
    return out


@dataclass(frozen=True)
class Transitions:
    """TD3's replay data for one K: row indices into the user and service matrices."""

    user: torch.Tensor  # long [M], 0: no user
    history: torch.Tensor  # long [M, N]
    action: torch.Tensor  # long [M, K]
    reward: torch.Tensor  # float [M], the K values combined (root mean square)
    values: torch.Tensor  # float [M, K], each recommended service's value
    next_history: torch.Tensor  # long [M, N]
    done: torch.Tensor  # float [M]

    def __len__(self) -> int:
        return len(self.reward)

    def batch(self, index: torch.Tensor) -> Transitions:
        return Transitions(*(getattr(self, f)[index] for f in self.__dataclass_fields__))

    def to(self, device: torch.device) -> Transitions:
        return Transitions(*(getattr(self, f).to(device) for f in self.__dataclass_fields__))


def transitions(
    sars: SarsSet, k: int, history_len: int, space: ServiceSpace, user_rows: Callable
) -> Transitions:
    """The transitions of `sars` with at least `k` services, the first `k` taken as the action."""
    keep = sars.with_k(k)
    part = sars.subset(keep)
    actions = np.array([a[:k] for a in part.actions], dtype=np.int64).reshape(-1, k)
    values = np.array([v[:k] for v in part.values], dtype=np.float32).reshape(-1, k)

    def tensor(array: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(array))

    return Transitions(
        user=tensor(user_rows(part.users)),
        history=tensor(right_aligned(part.history, history_len, space.rows)),
        action=tensor(space.rows(actions.reshape(-1)).reshape(-1, k)),
        reward=tensor(combine(values)),
        values=tensor(values),
        next_history=tensor(right_aligned(part.next_history, history_len, space.rows)),
        done=tensor(part.terminal.astype(np.float32)),
    )


@dataclass(frozen=True)
class UserSpace:
    """Users known to the data: sorted ids and embedding rows (row 0: zeros, anonymous)."""

    ids: np.ndarray
    matrix: np.ndarray  # float32 [len(ids) + 1, UE]

    @classmethod
    def build(cls, ids: np.ndarray, rows: Rows, dim: int) -> UserSpace:
        ids = np.unique(np.asarray(ids, dtype=np.int64))
        ids = ids[ids >= 0]
        embedded = rows(ids) if len(ids) else np.zeros((0, dim), np.float32)
        return cls(ids, np.concatenate([np.zeros((1, dim), np.float32), embedded]))

    def rows(self, ids: np.ndarray) -> np.ndarray:
        ids = np.asarray(ids, dtype=np.int64)
        if len(self.ids) == 0:
            return np.zeros(ids.shape, dtype=np.int64)
        pos = np.minimum(np.searchsorted(self.ids, ids), len(self.ids) - 1)
        return np.where(self.ids[pos] == ids, pos + 1, 0)
