"""The catalogue as serving needs it: numpy arrays held in memory, rebuilt on a new dump.

One `Catalogue` per process (per app), rebuilt when the "catalogue" stamp changes (see
recommender.store.stamps), read with one projected pass over services and users. The hot path then
filters candidates and looks users up without touching the database.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from itertools import chain

import numpy as np

from recommender.id_index import IdIndex
from recommender.models.marketplace import RECOMMENDABLE_STATUSES, Service, User
from recommender.store import get_db, stamps

INT64 = np.iinfo(np.int64)
EMPTY_IDS = np.empty(0, dtype=np.int64)
# `search_data` key -> the Service field it filters on (the context Popularity weights toward).
FACETS: dict[str, str] = {
    "categories": "categories",
    "scientific_domains": "scientific_domains",
    "providers": "providers",
    "related_platforms": "platforms",
    "target_users": "target_users",
}


def int64_ids(values: Iterable | None) -> np.ndarray:
    """`values` (JSON integers) as int64; ids outside int64 cannot exist, so they are dropped."""
    if not values:
        return EMPTY_IDS
    try:
        return np.asarray(values, dtype=np.int64)
    except (OverflowError, TypeError, ValueError):
        kept = [int(v) for v in values if INT64.min <= v <= INT64.max]
        return np.asarray(kept, dtype=np.int64)


# The interests a user declares (User fields, also `search_data` keys and keys of `FACETS`).
DECLARED = ("categories", "scientific_domains")

# (catalogue row of each id, whether the id exists): see `Catalogue.rows`
LookedUp = tuple[np.ndarray, np.ndarray]


@dataclass(frozen=True)
class UserProfile:
    id: int
    accessed_services: np.ndarray  # int64, oldest first


@dataclass(frozen=True)
class Facet:
    """Which services carry which attribute ids, stored by attribute (column-major), so that a
    request's few ids gather their services directly instead of scanning every service."""

    columns: np.ndarray  # sorted attribute ids
    starts: np.ndarray  # rows of columns[i] are rows[starts[i]:starts[i + 1]]
    rows: np.ndarray  # catalogue rows (aligned with Catalogue.ids), grouped by column
    n_rows: int

    def matches(self, ids: np.ndarray) -> np.ndarray:
        """Per service: True when it carries any of `ids`."""
        cols = np.searchsorted(self.columns, ids)
        inside = cols < len(self.columns)
        cols = cols[inside]
        cols = cols[self.columns[cols] == ids[inside]]
        hit = np.zeros(self.n_rows, dtype=bool)
        if len(cols) == 1:  # the common case: one filter value
            hit[self.rows[self.starts[cols[0]] : self.starts[cols[0] + 1]]] = True
        elif len(cols):
            lengths = self.starts[cols + 1] - self.starts[cols]
            # Positions of every selected column's rows, without a Python loop.
            offsets = np.repeat(self.starts[cols] - np.cumsum(lengths) + lengths, lengths)
            hit[self.rows[offsets + np.arange(lengths.sum())]] = True
        return hit


@dataclass(frozen=True)
class Catalogue:
    version: int
    ids: np.ndarray  # every service id, sorted
    recommendable: np.ndarray  # bool per row of `ids`
    recommendable_ids: np.ndarray  # sorted
    facets: Mapping[str, Facet]  # keyed by search_data key
    users: Mapping[int, np.ndarray]  # user id -> accessed services
    aai_uids: Mapping[str, int]
    index: IdIndex  # over `ids`: row r + 1 for ids[r], UNKNOWN for no such service
    # user id -> {"categories": ids, "scientific_domains": ids}: what the user declared (the
    # interest-overlap rule's side of the user); users who declared nothing are absent.
    declared: Mapping[int, Mapping[str, np.ndarray]] = field(default_factory=dict)

    def rows(self, service_ids: np.ndarray) -> LookedUp:
        """(row of each id, whether the id exists); rows of missing ids are meaningless."""
        return self.index.positions(service_ids)

    def eligible(
        self,
        candidates: np.ndarray,
        exclude: np.ndarray = EMPTY_IDS,
        looked_up: LookedUp | None = None,
    ) -> np.ndarray:
        """Recommendable candidates (all recommendable services when none are given), in the
        client's order, without duplicates and without `exclude`. `looked_up`:
        `rows(candidates)`, when the caller has it already.

        Worked on catalogue rows: a few gathers and one pass over a per-service mask, instead
        of the sorts that set operations on ids need."""
        if len(candidates) == 0:
            ids = self.recommendable_ids
            return ids[~np.isin(ids, exclude)] if len(exclude) else ids
        if not len(self.ids):
            return EMPTY_IDS
        rows, found = looked_up or self.rows(candidates)
        keep = found & self.recommendable[rows]
        if len(exclude):
            excluded_rows, found = self.rows(exclude)
            banned = np.zeros(len(self.ids), dtype=bool)
            banned[excluded_rows[found]] = True
            keep &= ~banned[rows]
        ids, rows = candidates[keep], rows[keep]
        if np.bincount(rows, minlength=1).max(initial=0) > 1:  # repeats: keep the first of each
            _, first = np.unique(rows, return_index=True)
            ids = ids[np.sort(first)]
        return ids

    def user(self, user_id: int | None, aai_uid: str | None) -> UserProfile | None:
        """The logged-in user: `user_id` first, else `aai_uid`; None (anonymous) if unknown."""
        if user_id is not None and user_id in self.users:
            return UserProfile(user_id, self.users[user_id])
        if aai_uid and aai_uid in self.aai_uids:
            found = self.aai_uids[aai_uid]
            return UserProfile(found, self.users[found])
        return None

    def context_matches(self, search_data: Mapping) -> np.ndarray:
        """Per service (row): how many of the request's filter facets it matches (0..5)."""
        counts = np.zeros(len(self.ids), dtype=np.int8)
        for key, facet in self.facets.items():
            ids = int64_ids(search_data.get(key))
            if len(ids):
                counts += facet.matches(ids)
        return counts


def _facet(rows_of: list[list[int]], n_rows: int) -> Facet:
    lengths = np.fromiter((len(values) for values in rows_of), dtype=np.int64, count=n_rows)
    # Stored ids are int64 already (MongoDB integers are at most 8 bytes).
    values = np.fromiter(chain.from_iterable(rows_of), dtype=np.int64, count=int(lengths.sum()))
    rows = np.repeat(np.arange(n_rows), lengths)
    pairs = np.unique(np.stack([values, rows]), axis=1)  # by id, then row; repeats once
    columns, counts = np.unique(pairs[0], return_counts=True)
    starts = np.concatenate([[0], np.cumsum(counts)])
    return Facet(columns, starts, pairs[1], n_rows)


def build_catalogue(version: int) -> Catalogue:
    """Read services and users once each (projected) into arrays."""
    db = get_db()
    fields = {field: 1 for field in FACETS.values()}
    services = sorted(
        db[Service._get_collection_name()].find({}, {"status": 1, **fields}),
        key=lambda doc: doc["_id"],
    )
    ids = np.fromiter((doc["_id"] for doc in services), dtype=np.int64, count=len(services))
    recommendable = np.fromiter(
        (doc.get("status") in RECOMMENDABLE_STATUSES for doc in services),
        dtype=bool,
        count=len(services),
    )
    facets = {
        key: _facet([doc.get(field) or [] for doc in services], len(services))
        for key, field in FACETS.items()
    }
    users: dict[int, np.ndarray] = {}
    aai_uids: dict[str, int] = {}
    declared: dict[int, dict[str, np.ndarray]] = {}
    projection = {"aai_uid": 1, "accessed_services": 1, **{key: 1 for key in DECLARED}}
    for doc in db[User._get_collection_name()].find({}, projection):
        users[doc["_id"]] = int64_ids(doc.get("accessed_services"))
        if doc.get("aai_uid"):
            aai_uids[doc["aai_uid"]] = doc["_id"]
        interests = {key: int64_ids(doc.get(key)) for key in DECLARED}
        if any(len(values) for values in interests.values()):
            declared[doc["_id"]] = interests
    return Catalogue(
        version,
        ids,
        recommendable,
        ids[recommendable],
        facets,
        users,
        aai_uids,
        IdIndex(ids),
        declared,
    )


class CatalogueCache:
    """An app's catalogue, rebuilt when the catalogue stamp (read through `stamps`, a stamp
    cache) has moved; calling it gives the current one."""

    def __init__(self, stamp_cache: stamps.StampCache):
        self._stamps = stamp_cache
        self._current: Catalogue | None = None
        self._lock = threading.Lock()

    def __call__(self) -> Catalogue:
        version = self._stamps.get(stamps.CATALOGUE)
        current = self._current
        if current is not None and current.version == version:
            return current
        with self._lock:
            if self._current is None or self._current.version != version:
                self._current = build_catalogue(version)
            return self._current
