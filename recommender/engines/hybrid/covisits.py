"""The Hybrid's co-visit part: how strongly other users' lists tie each candidate to the services
this user accessed last, counting only services accessed close together in a list.

Users access related services in runs (a project's tools, one topic's datasets), so two services
a few places apart in one list say more about each other than two anywhere in it, which is all
EASE and iALS see. Per pair of entries of one user's training list at most `window` places apart
(either order), the pair counts PAIR_DECAY ** (distance - 1); a candidate's weight from a service
is that count over (1 + the candidate's training positives) ** `exponent`, so that popular
services do not tie to everything; each service keeps its MAX_NEIGHBOURS largest weights
(neighbours.py). A
user's score for a candidate sums the weights from the last `window` services of their history,
the latest weighing 1 and each older one HISTORY_DECAY times the one after it (a service listed
twice counts once, at its latest place). This is the item-neighbourhood model of session-based
recommendation (sequential rules, session kNN) over the users' ordered lists; written here
because it is a sparse count and a top-k, while implicit's item-item models count whole
histories, without the window that makes this part differ from EASE.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse

from recommender.engines.base.scoring import IdLists
from recommender.engines.hybrid import neighbours as shared
from recommender.id_index import IdIndex

PAIR_DECAY = 0.8
HISTORY_DECAY = 0.9
WINDOWS = (10, 20)
EXPONENTS = (0.25, 0.5)


@dataclass(frozen=True)
class CoVisitSetting:
    window: int
    exponent: float

    @property
    def label(self) -> str:
        return f"window {self.window}, exponent {self.exponent}"


SETTINGS = tuple(CoVisitSetting(w, e) for w in WINDOWS for e in EXPONENTS)


@dataclass(frozen=True)
class CoVisits:
    services: IdIndex
    # [n + 1, n + 1] over the services' rows, row 0 (unknown) empty; stored as float32, summed
    # in float64 (`fit` and `from_arrays` convert once).
    weights: sparse.csr_matrix
    setting: CoVisitSetting
    version: int = 0  # fitted by the Hybrid stage, stored with its weights

    def batch_scores(
        self, user_ids: np.ndarray, histories: IdLists, candidates: np.ndarray
    ) -> np.ndarray:
        return shared.history_scores(
            self.services,
            self.weights,
            histories,
            candidates,
            HISTORY_DECAY,
            self.setting.window,
        )


def pair_counts(
    users: np.ndarray, services: np.ndarray, width: int, window: int
) -> sparse.csr_matrix:
    """[width, width] symmetric CSR: per pair of entries at most `window` apart in one user's
    list, PAIR_DECAY ** (distance - 1). `users` and `services` are the (user row, service row)
    pairs grouped by user in ascending order, each user's oldest first (the split's order)."""
    position = np.arange(len(users)) - np.searchsorted(users, users)
    counts = sparse.csr_matrix((width, width), dtype=np.float64)
    for distance in range(1, window + 1):
        later = np.flatnonzero(position >= distance)
        pairs = sparse.csr_matrix(
            (
                np.full(len(later), PAIR_DECAY ** (distance - 1)),
                (services[later - distance], services[later]),
            ),
            shape=(width, width),
        )
        counts = counts + pairs + pairs.T
    counts.sort_indices()
    return counts


def neighbours(
    counts: sparse.csr_matrix,
    positives: np.ndarray,
    exponent: float,
    keep: int = shared.MAX_NEIGHBOURS,
) -> sparse.csr_matrix:
    """`counts` over (1 + the column's training positives) ** exponent, each row's `keep`
    largest kept (ties: the lower column), as float32 CSR."""
    scaled = counts.astype(np.float64, copy=True)
    scaled.data /= (1.0 + positives[scaled.indices]) ** exponent
    return shared.top_per_row(scaled, keep)


def fit(
    services: IdIndex,
    users: np.ndarray,
    service_rows: np.ndarray,
    positives: np.ndarray,
    settings: tuple[CoVisitSetting, ...] = SETTINGS,
) -> list[CoVisits]:
    """One part per setting, from the training pairs (see `pair_counts`) and the training
    positives per service row; the counts are made once per window."""
    width = services.rows_total
    counts = {w: pair_counts(users, service_rows, width, w) for w in {s.window for s in settings}}
    return [
        CoVisits(
            services, neighbours(counts[s.window], positives, s.exponent).astype(np.float64), s
        )
        for s in settings
    ]


def arrays(part: CoVisits) -> dict[str, np.ndarray]:
    """The part's weights as the arrays a stored version holds (see `from_arrays`)."""
    return shared.arrays(part.weights)


def from_arrays(
    services: IdIndex, stored: dict[str, np.ndarray], setting: CoVisitSetting
) -> CoVisits:
    return CoVisits(services, shared.from_arrays(stored, services.rows_total), setting)
