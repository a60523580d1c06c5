"""Dense user and service embeddings, as NCF, RL and serving read them.

API (stable):

    emb = cached_embeddings(models)  # Embeddings | None (None: no "embeddings" model is live)
    emb.version                      # the model version they come from
    emb.users, emb.services          # EmbeddingTable
    table.ids                        # np.ndarray[int64], sorted: everyone known at training time
    table.matrix                     # np.ndarray[float32] [len(ids), dim], unit L2 rows
                                     #   (all-zero rows: entities without any feature)
    table.dim                        # embedding width (users 64, services 128 by default)
    table.rows(ids)                  # np.ndarray[float32] [len(ids), dim], aligned with `ids`
    emb.encode_users(docs)           # docs: dicts with the feature fields (User / Service
    emb.encode_services(docs)        #   documents or dump entries); -> [len(docs), dim]

`rows` is vectorised (np.searchsorted). Ids unknown at training time (users and services added
by a later dump) are encoded on demand from their catalogue features with the stored encoder and
vocabulary: one database read for those ids only, then remembered until the catalogue or the
model changes. Ids that exist nowhere get an all-zero row.

`cached_embeddings(models)` reads through a process's model cache: it costs nothing on the hot
path and picks up a newly promoted version, or a new catalogue, within MODEL_RELOAD_INTERVAL
seconds. Training reads the live version directly (`live_embeddings()`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from recommender.engines.autoencoders import EMBEDDINGS_MODEL as MODEL_NAME
from recommender.engines.autoencoders import features
from recommender.engines.autoencoders.features import RawEntities, Vocabulary
from recommender.engines.autoencoders.model import EntityEncoder, Shape
from recommender.model_store import versions
from recommender.model_store.cache import ModelCache
from recommender.model_store.versions import NoModelError, StoredModel
from recommender.store import stamps

ENTITIES = ("users", "services")
Reader = Callable[[str, Sequence[int]], RawEntities]


class EmbeddingTable:
    """The embeddings of one entity kind, plus the encoder for ids not seen in training."""

    def __init__(
        self,
        entity: str,
        ids: np.ndarray,
        matrix: np.ndarray,
        encoder: EntityEncoder,
        reader: Reader = features.read_entities,
    ):
        self.entity = entity
        self.ids = ids
        self.matrix = matrix
        self.encoder = encoder
        self._reader = reader
        # Ids encoded on demand (sorted) and their rows; replaced whole, so reads need no lock.
        self._extra: tuple[np.ndarray, np.ndarray] = (ids[:0], matrix[:0])
        self._lock = threading.Lock()

    @property
    def dim(self) -> int:
        return self.matrix.shape[1]

    def rows(self, ids: Sequence[int] | np.ndarray) -> np.ndarray:
        """One row per id (see the module doc for unknown ids)."""
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        out, found = _lookup(self.ids, self.matrix, ids)
        if found.all():
            return out
        extra_ids, extra_matrix = self._extra
        more, found_more = _lookup(extra_ids, extra_matrix, ids[~found])
        if not found_more.all():
            self._encode_missing(np.unique(ids[~found][~found_more]))
            more, _ = _lookup(*self._extra, ids[~found])
        out[~found] = more
        return out

    def encode(self, docs: Sequence[Mapping]) -> np.ndarray:
        """Embeddings of documents carrying the feature fields, in the given order."""
        cols = features.columns(docs, features.ENTITY_FIELDS[self.entity])
        return self.encoder.encode(self.encoder.vocabulary.transform(cols))

    def _encode_missing(self, ids: np.ndarray) -> None:
        """Read the catalogue for `ids` only, encode them; ids that do not exist get zeros."""
        existing = ids[ids >= 0]
        raw = self._reader(self.entity, existing.tolist()) if len(existing) else None
        rows = np.zeros((len(ids), self.dim), dtype=np.float32)
        if raw is not None and len(raw):
            encoded = self.encoder.encode(self.encoder.vocabulary.transform(raw.cols))
            rows[np.searchsorted(ids, raw.ids)] = encoded
        with self._lock:
            extra_ids, extra_matrix = self._extra
            merged = np.concatenate([extra_ids, ids])
            order = np.argsort(merged, kind="stable")
            merged_ids, first = np.unique(merged[order], return_index=True)
            merged_rows = np.concatenate([extra_matrix, rows])[order][first]
            self._extra = (merged_ids, merged_rows)


def _lookup(ids: np.ndarray, matrix: np.ndarray, wanted: np.ndarray):
    """(rows, found): rows of `wanted` in the sorted `ids` (zeros where not found)."""
    if len(ids) == 0 or len(wanted) == 0:
        out = np.zeros((len(wanted), matrix.shape[1]), dtype=np.float32)
        return out, np.zeros(len(wanted), dtype=bool)
    pos = np.minimum(np.searchsorted(ids, wanted), len(ids) - 1)
    found = ids[pos] == wanted
    if found.all():  # the usual case: one gather, no zeroed array and masked copy
        return matrix.take(pos, axis=0).astype(np.float32, copy=False), found
    out = np.zeros((len(wanted), matrix.shape[1]), dtype=np.float32)
    out[found] = matrix[pos[found]]
    return out, found


@dataclass(frozen=True)
class Embeddings:
    version: int
    users: EmbeddingTable
    services: EmbeddingTable

    def encode_users(self, docs: Sequence[Mapping]) -> np.ndarray:
        return self.users.encode(docs)

    def encode_services(self, docs: Sequence[Mapping]) -> np.ndarray:
        return self.services.encode(docs)


def encoder_from_state(state: Mapping, shape: Mapping) -> EntityEncoder:
    return EntityEncoder(
        Vocabulary.from_state(state["vocabulary"]), Shape(**shape), dict(state["encoder"])
    )


def from_stored(stored: StoredModel) -> Embeddings:
    """Build the in-memory tables from a stored "embeddings" version."""
    tables = {}
    for entity in ENTITIES:
        state = stored.tensors[entity]
        tables[entity] = EmbeddingTable(
            entity,
            state["ids"].numpy().astype(np.int64, copy=False),
            state["matrix"].numpy().astype(np.float32, copy=False),
            encoder_from_state(state, stored.config[entity]),
        )
    return Embeddings(stored.version, tables["users"], tables["services"])


def to_tensors(
    entity_ids: Mapping[str, np.ndarray],
    matrices: Mapping[str, np.ndarray],
    encoders: Mapping[str, EntityEncoder],
) -> dict:
    """The payload of an "embeddings" version: ids, matrices, encoder weights, vocabularies."""
    return {
        entity: {
            "ids": torch.from_numpy(np.ascontiguousarray(entity_ids[entity], dtype=np.int64)),
            "matrix": torch.from_numpy(np.ascontiguousarray(matrices[entity], dtype=np.float32)),
            "encoder": encoders[entity].encoder.state_dict(),
            "vocabulary": encoders[entity].vocabulary.to_state(),
        }
        for entity in ENTITIES
    }


def cached_embeddings(models: ModelCache) -> Embeddings | None:
    """The live embeddings, built once per model version and catalogue version (module doc)."""
    return models.get(MODEL_NAME, from_stored, depends_on=(stamps.CATALOGUE,))


def live_embeddings() -> Embeddings | None:
    """The live embeddings read now (training: no cache), or None."""
    try:
        return from_stored(versions.load(MODEL_NAME))
    except NoModelError:
        return None


def pinned_embeddings(version: int, live: Embeddings | None) -> Embeddings:
    """The embeddings of `version` (what a model was trained on): the live ones when they are
    that version, else read by version (NoModelError when gone)."""
    if live is not None and live.version == version:
        return live
    return from_stored(versions.load(MODEL_NAME, version))
