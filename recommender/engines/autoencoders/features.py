"""Multi-hot content features of users and services, built from ids in one vectorised pass.

Each feature field has its own fitted vocabulary (the sorted distinct ids seen in training), so
"categories 3" and "scientific_domains 3" are different columns. `resource_organisation` is one
value, not a list. Values not in the vocabulary are ignored. The vocabulary is stored with the
model (plain lists: `Vocabulary.to_state` / `from_state`) so new users and services are encoded
exactly as at training time.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import chain

import numpy as np
from scipy import sparse

from recommender.models.marketplace import Service, User
from recommender.store import get_db

USER_FIELDS: tuple[str, ...] = ("categories", "scientific_domains")
SERVICE_FIELDS: tuple[str, ...] = (
    "countries",
    "categories",
    "providers",
    "resource_organisation",
    "scientific_domains",
    "platforms",
    "target_users",
    "access_modes",
    "access_types",
    "trls",
    "life_cycle_statuses",
    "research_steps",
)
SINGLE_VALUED = frozenset({"resource_organisation"})
STRING_VALUED = frozenset({"countries"})
ENTITY_FIELDS: dict[str, tuple[str, ...]] = {"users": USER_FIELDS, "services": SERVICE_FIELDS}
COLLECTIONS: dict[str, str] = {
    "users": User._get_collection_name(),
    "services": Service._get_collection_name(),
}


@dataclass(frozen=True)
class Column:
    """One field over n documents: every value, flattened, and how many each document has."""

    values: np.ndarray
    lengths: np.ndarray  # int64, one per document


def _as_list(value, single: bool) -> list:
    if single:
        return [] if value is None else [value]
    return list(value) if value else []


def columns(docs: Sequence[Mapping], fields: Iterable[str]) -> dict[str, Column]:
    """The feature columns of `docs` (dicts with the fields; missing or null = no value)."""
    result = {}
    for field in fields:
        lists = [_as_list(doc.get(field), field in SINGLE_VALUED) for doc in docs]
        dtype = str if field in STRING_VALUED else np.int64
        result[field] = Column(
            values=np.array(list(chain.from_iterable(lists)), dtype=dtype),
            lengths=np.fromiter(map(len, lists), dtype=np.int64, count=len(lists)),
        )
    return result


@dataclass(frozen=True)
class Vocabulary:
    """Per field, the sorted distinct values that own a column; fields keep their order."""

    fields: dict[str, np.ndarray]

    @classmethod
    def fit(cls, cols: Mapping[str, Column]) -> Vocabulary:
        return cls({field: np.unique(col.values) for field, col in cols.items()})

    @property
    def dim(self) -> int:
        return int(sum(len(values) for values in self.fields.values()))

    def sizes(self) -> dict[str, int]:
        return {field: len(values) for field, values in self.fields.items()}

    def transform(self, cols: Mapping[str, Column]) -> sparse.csr_matrix:
        """A float32 [n, dim] 0/1 matrix; values outside the vocabulary are ignored."""
        n = len(next(iter(cols.values())).lengths) if cols else 0
        rows, cols_idx, offset = [], [], 0
        for field, vocab in self.fields.items():
            col = cols[field]
            if len(vocab) and len(col.values):
                pos = np.minimum(np.searchsorted(vocab, col.values), len(vocab) - 1)
                known = vocab[pos] == col.values
                owner = np.repeat(np.arange(n, dtype=np.int64), col.lengths)
                rows.append(owner[known])
                cols_idx.append(pos[known] + offset)
            offset += len(vocab)
        row = np.concatenate(rows) if rows else np.empty(0, dtype=np.int64)
        col = np.concatenate(cols_idx) if cols_idx else np.empty(0, dtype=np.int64)
        matrix = sparse.csr_matrix(
            (np.ones(len(row), dtype=np.float32), (row, col)), shape=(n, offset)
        )
        matrix.sum_duplicates()
        matrix.data[:] = 1.0  # a value listed twice is still one feature
        return matrix

    def to_state(self) -> dict[str, list]:
        """Plain lists (ints or strings): storable with weights_only loading."""
        return {field: values.tolist() for field, values in self.fields.items()}

    @classmethod
    def from_state(cls, state: Mapping[str, list]) -> Vocabulary:
        return cls(
            {
                field: np.asarray(values, dtype=str if field in STRING_VALUED else np.int64)
                for field, values in state.items()
            }
        )


@dataclass(frozen=True)
class RawEntities:
    """Ids (int64, sorted) and feature columns of one entity kind, as read from the catalogue."""

    ids: np.ndarray
    cols: dict[str, Column]

    def __len__(self) -> int:
        return len(self.ids)


def from_docs(docs: Sequence[Mapping], fields: Iterable[str]) -> RawEntities:
    """Documents (with `_id` or `id`) as RawEntities, sorted by id."""
    docs = sorted(docs, key=lambda doc: doc.get("_id", doc.get("id")))
    ids = np.fromiter((doc.get("_id", doc.get("id")) for doc in docs), np.int64, len(docs))
    return RawEntities(ids, columns(docs, fields))


def read_entities(entity: str, ids: Sequence[int] | None = None) -> RawEntities:
    """One projected scan of the entity's collection (all documents, or just `ids`)."""
    fields = ENTITY_FIELDS[entity]
    query = {} if ids is None else {"_id": {"$in": [int(i) for i in ids]}}
    cursor = get_db()[COLLECTIONS[entity]].find(query, dict.fromkeys(fields, 1))
    return from_docs(list(cursor), fields)
