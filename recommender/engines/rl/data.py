"""From SARS documents to the arrays the actor-critic trains on. Row 0 of every table is padding
(short histories, missing services, unknown users).

Everything is indexed, not copied: requests hold row numbers into the user and service tables
and batches gather from them (candidates.py computes the features per batch).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from recommender.engines.rl.candidates import ServiceTable, States
from recommender.sessions.rewards import service_values


@dataclass(frozen=True)
class ServiceSpace:
    """Known services: sorted ids and their table rows (row 0: padding, then one per id)."""

    ids: np.ndarray
    table: ServiceTable

    @property
    def popularity(self) -> np.ndarray:
        return self.table.popularity.numpy()

    def rows(self, ids: np.ndarray) -> np.ndarray:
        """Row of each id (0 when unknown)."""
        return _rows(self.ids, ids)


def _rows(known: np.ndarray, ids) -> np.ndarray:
    ids = np.asarray(ids, dtype=np.int64)
    if len(known) == 0:
        return np.zeros(ids.shape, dtype=np.int64)
    pos = np.minimum(np.searchsorted(known, ids), len(known) - 1)
    return np.where(known[pos] == ids, pos + 1, 0)


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


def value_sums(ids: np.ndarray, sars: SarsSet) -> tuple[np.ndarray, np.ndarray]:
    """Per sorted id: (value earned, times shown) over the transitions of `sars`."""
    shown = np.fromiter((s for a in sars.actions for s in a), np.int64)
    values = np.fromiter((v for vals in sars.values for v in vals), np.float64)
    rows = _rows(ids, shown)
    known = rows > 0
    earned, showings = np.zeros(len(ids) + 1), np.zeros(len(ids) + 1)
    np.add.at(earned, rows[known], values[known])
    np.add.at(showings, rows[known], 1.0)
    return earned[1:], showings[1:]


@dataclass
class SarsSet:
    """Parsed SARS, one entry per transition (plain lists: they are ragged)."""

    users: np.ndarray  # int64, -1: anonymous
    history: list[list[int]]
    candidates: list[list[int]]
    actions: list[list[int]]
    values: list[np.ndarray]  # per recommended service, in [0, 1]
    propensities: list[np.ndarray]  # per position: P(logging policy shows it there); 1: unknown
    recorded: np.ndarray  # bool: the recommendation recorded its propensities
    times: np.ndarray  # float64 seconds, for the splits

    def __len__(self) -> int:
        return len(self.users)

    @classmethod
    def from_docs(cls, docs: Sequence[Mapping], recs: Mapping[object, Mapping]) -> SarsSet:
        """`recs`: source_recommendation -> its document (timestamp, propensities)."""

        def rec(doc) -> Mapping:
            return recs.get(doc.get("source_recommendation")) or {}

        def seconds(doc) -> float:
            value = rec(doc).get("timestamp")
            return value.timestamp() if isinstance(value, dt.datetime) else 0.0

        def propensities(doc) -> np.ndarray:
            n = len(doc.get("action") or ())
            logged = rec(doc).get("propensities") or ()
            out = np.ones(n, dtype=np.float32)
            if len(logged) == n:  # a partial or foreign list is not trusted
                out[:] = np.clip(np.asarray(logged, dtype=np.float32), 1e-6, 1.0)
            return out

        def user(doc) -> int:
            value = (doc.get("state") or {}).get("user")
            return -1 if value is None else int(value)

        return cls(
            users=np.fromiter((user(d) for d in docs), dtype=np.int64, count=len(docs)),
            history=[list(d["state"].get("services_history") or ()) for d in docs],
            candidates=[list(d["state"].get("candidates") or ()) for d in docs],
            actions=[list(d.get("action") or ()) for d in docs],
            values=[service_values(d.get("reward") or ()) for d in docs],
            propensities=[propensities(d) for d in docs],
            recorded=np.fromiter(
                (len(rec(d).get("propensities") or ()) > 0 for d in docs), bool, len(docs)
            ),
            times=np.fromiter((seconds(d) for d in docs), float, len(docs)),
        )

    def subset(self, index: np.ndarray) -> SarsSet:
        pick = np.asarray(index, dtype=np.int64).tolist()
        return SarsSet(
            users=self.users[pick],
            history=[self.history[i] for i in pick],
            candidates=[self.candidates[i] for i in pick],
            actions=[self.actions[i] for i in pick],
            values=[self.values[i] for i in pick],
            propensities=[self.propensities[i] for i in pick],
            recorded=self.recorded[pick],
            times=self.times[pick],
        )

    def with_k(self, k: int) -> np.ndarray:
        """Indices of the logged-in transitions with exactly `k` recommended services (the
        panel's size: RL serves logged-in users only)."""
        sizes = np.fromiter((len(a) for a in self.actions), np.int64, len(self))
        return np.flatnonzero((sizes == k) & (self.users >= 0))

    def clicked(self) -> list[set[int]]:
        """Per transition, the recommended services that were clicked or ordered."""
        return [
            {s for s, v in zip(a, vals, strict=True) if v > 0}
            for a, vals in zip(self.actions, self.values, strict=True)
        ]


@dataclass(frozen=True)
class Split:
    """Indices into a SarsSet. Validation: other users AND later time than training; test
    (held out, read once by the gate): the latest sessions of the non-validation users. The
    periods: every transition of the validation and test times, whoever the user (what the
    simulators judging those splits are fit on; none of it is training data)."""

    train: np.ndarray
    validation: np.ndarray
    test: np.ndarray
    validation_period: np.ndarray
    test_period: np.ndarray


def split(
    sars: SarsSet, validation_users: float, validation: float, test: float, seed: int
) -> Split:
    """Times are cut at the (1 - validation - test) and (1 - test) quantiles of the transitions;
    a seeded `validation_users` share of the users is kept for validation only."""
    order = np.argsort(sars.times, kind="stable")
    n = len(order)
    period = np.zeros(n, dtype=np.int64)  # 0 train, 1 validation, 2 test time
    period[order[n - round(n * (validation + test)) :]] = 1
    period[order[n - round(n * test) :]] = 2
    users = np.unique(sars.users[sars.users >= 0])
    rng = np.random.default_rng(seed)
    held = rng.permutation(users)[: round(len(users) * validation_users)]
    of_validation = np.isin(sars.users, held)
    return Split(
        train=np.flatnonzero((period == 0) & ~of_validation),
        validation=np.flatnonzero((period == 1) & of_validation),
        test=np.flatnonzero((period == 2) & ~of_validation),
        validation_period=np.flatnonzero(period == 1),
        test_period=np.flatnonzero(period == 2),
    )


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


def padded_rows(lists: Sequence[np.ndarray]) -> np.ndarray:
    """[len(lists), longest] of each row list, 0-padded at the end."""
    width = max((len(x) for x in lists), default=0)
    out = np.zeros((len(lists), max(width, 1)), dtype=np.int64)
    lengths = np.fromiter((len(x) for x in lists), np.int64, len(lists))
    if lengths.sum():
        owners = np.repeat(np.arange(len(lists)), lengths)
        starts = np.cumsum(lengths) - lengths
        out[owners, np.arange(int(lengths.sum())) - starts[owners]] = np.concatenate(lists)
    return out


@dataclass(frozen=True)
class UserSpace:
    """Users known to the data: sorted ids, embedding rows and declared interests (row 0:
    zeros, an unknown user)."""

    ids: np.ndarray
    matrix: torch.Tensor  # float [U + 1, UE]
    interests: torch.Tensor  # float 0/1 [U + 1, V]

    def rows(self, ids: np.ndarray) -> np.ndarray:
        return _rows(self.ids, ids)


@dataclass(frozen=True)
class Requests:
    """Logged requests of one panel size K, as row indices (the actor-critic's replay data)."""

    user: torch.Tensor  # long [M] rows into UserSpace
    history: torch.Tensor  # long [M, N] service rows
    candidates: torch.Tensor  # long [M, C] service rows the policy chose from, 0: padding
    shown: torch.Tensor  # long [M, K] column in `candidates` of the logged service at j
    values: torch.Tensor  # float [M, K] what the service at j earned
    propensities: torch.Tensor  # float [M, K] logging P(that service at j)

    def __len__(self) -> int:
        return len(self.user)

    def batch(self, index: torch.Tensor) -> Requests:
        return Requests(*(getattr(self, f)[index] for f in self.__dataclass_fields__))

    def states(self, users: UserSpace) -> States:
        return States(users.matrix[self.user], users.interests[self.user], self.history)


def requests(
    sars: SarsSet,
    k: int,
    history_len: int,
    services: ServiceSpace,
    users: UserSpace,
    excluded: Mapping[int, Sequence[int]],
    recommendable: np.ndarray,
) -> Requests:
    """The logged-in transitions of `sars` showing `k` services. Candidates: the logged ones
    that are known, `recommendable` (sorted ids) and not in the user's `excluded` (accessed)
    services, with the shown ones first so that a logged service is always among them."""
    part = sars.subset(sars.with_k(k))
    shown = services.rows(np.array(part.actions, dtype=np.int64).reshape(-1, k))
    lists = []
    for i, (candidates, user) in enumerate(zip(part.candidates, part.users, strict=True)):
        ids = np.unique(np.asarray(candidates, dtype=np.int64))
        rows = services.rows(ids[np.isin(ids, recommendable)])
        banned = services.rows(np.asarray(excluded.get(int(user), ()), dtype=np.int64))
        rows = rows[(rows > 0) & ~np.isin(rows, banned) & ~np.isin(rows, shown[i])]
        lists.append(np.concatenate([shown[i], rows]))
    candidates = padded_rows(lists) if lists else np.zeros((0, k), np.int64)
    columns = np.broadcast_to(np.arange(k), shown.shape)
    values = np.array(part.values, dtype=np.float32).reshape(-1, k)
    known = shown > 0
    return Requests(
        user=torch.from_numpy(users.rows(part.users)),
        history=torch.from_numpy(right_aligned(part.history, history_len, services.rows)),
        candidates=torch.from_numpy(candidates),
        shown=torch.from_numpy(np.where(known, columns, -1).astype(np.int64)),
        values=torch.from_numpy(np.where(known, values, 0.0).astype(np.float32)),
        propensities=torch.from_numpy(np.array(part.propensities, dtype=np.float32).reshape(-1, k)),
    )
