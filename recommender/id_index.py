"""Ids (any int64) -> table rows 1..n, 0 for ids not in the table; vectorised.

NCF's embedding tables and the serving catalogue look ids up through it: ids are never used as
indices themselves.
"""

from __future__ import annotations

import numpy as np

UNKNOWN = 0  # the row of every id not in the table
DENSE_IDS_BELOW = 1 << 24  # the dense id -> row table: at most 64 MB


class IdIndex:
    """Sorted ids -> embedding rows 1..n; ids not in the table -> UNKNOWN (vectorised).

    Ids that are small non-negative integers (the Marketplace's) are looked up in a dense
    id -> row table, one gather per call; others by binary search."""

    def __init__(self, ids: np.ndarray):
        self.ids = np.asarray(ids, dtype=np.int64)
        self._dense: np.ndarray | None = None
        if len(self.ids) and self.ids[0] >= 0 and self.ids[-1] < DENSE_IDS_BELOW:
            self._dense = np.zeros(self.ids[-1] + 1, dtype=np.int32)
            self._dense[self.ids] = np.arange(1, len(self.ids) + 1, dtype=np.int32)

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def rows_total(self) -> int:
        """Rows of an embedding table over this index (the unknown row included)."""
        return len(self.ids) + 1

    def rows(self, ids: np.ndarray) -> np.ndarray:
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        if len(self.ids) == 0:
            return np.zeros(len(ids), dtype=np.int64)
        if self._dense is not None:
            inside = (ids >= 0) & (ids < len(self._dense))
            if inside.all():
                return self._dense[ids].astype(np.int64)
            rows = np.full(len(ids), UNKNOWN, dtype=np.int64)
            rows[inside] = self._dense[ids[inside]]
            return rows
        pos = np.minimum(np.searchsorted(self.ids, ids), len(self.ids) - 1)
        return np.where(self.ids[pos] == ids, pos + 1, UNKNOWN)

    def positions(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(0-based position of each id in `self.ids`, whether it is there): for arrays aligned
        with the ids rather than with an embedding table; positions of missing ids are 0."""
        rows = self.rows(ids)
        return np.maximum(rows - 1, 0), rows != UNKNOWN
