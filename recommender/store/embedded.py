"""The embedded store (mongomock, in this process): the demo's and the tests' MongoDB stand-in,
and the tuning that exists only because it keeps every document as Python objects.

Used only when MONGODB_HOST=mongomock; nothing here runs against a real MongoDB.
- `patch_datetime_awareness_in_document`: mongomock passes every stored value and filter through
  a helper that walks each value in Python to round datetimes as MongoDB does. A served
  recommendation holds up to 1,000 candidate ids, so that walk cost about ten times what a
  MongoDB server's C BSON encoder spends. This replacement returns the same result but copies flat
  lists of plain scalars (nothing to round in them) in one C-level pass.
- `in_operator`: mongomock evaluates `$in` per document by scanning the searched list (and
  checking each of its values for a regex); a query with 100,000 visit ids over a million
  documents then does 10^11 comparisons. This one turns the list into a set once per query.
- `cursor_next`: mongomock's cursor slices its whole result list (`results[skip:]`) to return
  each document, so reading N documents costs N^2/2 element copies: minutes for a million. This
  one indexes the computed list directly (the same documents in the same order).
- `IdInterner`: a stored document lives on in this process's heap. Lists of ids made of one
  shared int object per id (instead of new ints per document) keep that heap, and the garbage
  collector's work on it, small.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import mongoengine
import mongomock
import mongomock.gridfs
import numpy as np
from bson import ObjectId
from mongomock import filtering, helpers

# Values the original walk returns unchanged (exact types: subclasses take the original path).
_UNCHANGED = frozenset({int, float, str, bool, bytes, type(None), ObjectId})
_original: Callable[[Any], Any] = helpers.patch_datetime_awareness_in_document


def patch_datetime_awareness_in_document(value: Any) -> Any:
    kind = type(value)
    if kind is list or kind is tuple:
        if set(map(type, value)) <= _UNCHANGED:
            return list(value)
        return [patch_datetime_awareness_in_document(item) for item in value]
    if kind is dict:
        return {
            key: item if type(item) in _UNCHANGED else patch_datetime_awareness_in_document(item)
            for key, item in value.items()
        }
    if kind in _UNCHANGED:
        return value
    # OrderedDict, datetime, Timestamp, subclasses: the original (which recurses through this).
    return _original(value)


_original_in: Callable[[Any, Any], bool] = filtering._in_op
_searched: tuple[Any, frozenset | None] = (None, None)  # the last searched list, as a set


def _as_set(search_val: Any) -> frozenset | None:
    """`search_val` as a set, reused while the same list object is searched (one query); None
    when a value is a regex or unhashable (mongomock's own scan handles those)."""
    global _searched
    if _searched[0] is search_val:
        return _searched[1]
    try:
        values = frozenset(search_val)
    except TypeError:
        values = None
    if values is not None and any(isinstance(v, filtering._RE_TYPES) for v in values):
        values = None
    _searched = (search_val, values)
    return values


def in_operator(doc_val: Any, search_val: Any) -> bool:
    """mongomock's `$in`, with the same answers, a set lookup per document."""
    if not isinstance(search_val, list | tuple):
        return _original_in(doc_val, search_val)
    values = _as_set(search_val)
    if values is None:
        return _original_in(doc_val, search_val)
    if doc_val is filtering.NOTHING:
        return None in values
    try:
        return any(x in values for x in filtering._force_list(doc_val))
    except TypeError:  # an unhashable value in the document (a sub-document)
        return _original_in(doc_val, search_val)


_original_cursor_next: Callable[[Any], Any] = mongomock.collection.Cursor.__next__


def cursor_next(cursor: mongomock.collection.Cursor) -> Any:
    """mongomock's `Cursor.__next__` without the per-document slice."""
    results = cursor._compute_results(with_limit_and_skip=False)
    position = cursor._skip + cursor._emitted
    if (cursor._limit and cursor._emitted >= abs(cursor._limit)) or position >= len(results):
        raise StopIteration
    cursor._emitted += 1
    return results[position]


def connect(db_name: str) -> None:
    """Connect mongoengine's default alias to an in-process mongomock database."""
    mongomock.gridfs.enable_gridfs_integration()
    helpers.patch_datetime_awareness_in_document = patch_datetime_awareness_in_document
    filtering._in_op = in_operator  # `$nin` calls it through the module
    filtering._filterer_inst._operator_map["$in"] = in_operator
    mongomock.collection.Cursor.__next__ = cursor_next
    mongoengine.connect(
        db=db_name,
        host="mongodb://localhost",
        mongo_client_class=mongomock.MongoClient,
        uuidRepresentation="standard",
    )


class IdInterner:
    """One shared Python int per id: `ints(ids)` lists int64 ids as those shared objects.

    The table only grows with distinct ids (a catalogue's services); it is replaced whole, so
    readers need no lock."""

    def __init__(self) -> None:
        self._table: tuple[np.ndarray, np.ndarray] = (
            np.empty(0, np.int64),
            np.empty(0, dtype=object),
        )
        self._lock = threading.Lock()

    def ints(self, ids: np.ndarray) -> list[int]:
        ids = np.asarray(ids, dtype=np.int64)
        positions, found = self._positions(ids)
        if not found.all():
            self._add(np.unique(ids[~found]))
            positions, found = self._positions(ids)
        return self._table[1][positions].tolist()

    def _positions(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        keys = self._table[0]
        if not len(keys):
            return np.zeros(len(ids), np.intp), np.zeros(len(ids), bool)
        positions = np.minimum(np.searchsorted(keys, ids), len(keys) - 1)
        return positions, keys[positions] == ids

    def _add(self, new: np.ndarray) -> None:
        with self._lock:
            keys, objects = self._table
            merged = np.concatenate([keys, new])
            order = np.argsort(merged, kind="stable")
            merged, first = np.unique(merged[order], return_index=True)
            every = np.concatenate([objects, np.array(new.tolist(), dtype=object)])
            self._table = (merged, every[order][first])


interner = IdInterner()
