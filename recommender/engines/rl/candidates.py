"""What the RL actor scores: one feature vector per (request, candidate), shared by training and
serving (nothing here imports training code).

A request's state is the user (declared interests and autoencoder embedding) and the last N
services of their history; each candidate gets FEATURES:
- overlap: declared categories and scientific domains shared with the user, capped at
  MAX_OVERLAP and scaled to [0, 1];
- any_overlap: 1 when there is any shared interest (the interest-overlap rule's first key);
- interest_cosine: the overlap over the geometric mean of the two interest counts (a
  specialist's one shared interest says more than a generalist's);
- history_mean: cosine between the candidate's content embedding and the mean of the history's;
- history_max: the largest cosine to any one history service (1 - novelty: how far the
  candidate is from everything the user already used);
- history_interests: cosine between the candidate's declared interests and those of the
  history's services together (what the user's past services say they care about);
- popularity: log-scaled clicks and orders in the training data, in [0, 1];
- popular_overlap: popularity x any_overlap (the rule's tie-break among matching services);
- value_rate: what the service earned per showing in the training logs, shrunk towards the
  mean of all services and scaled to [0, 1] (the appeal no declared field shows).
The actor turns a state into one weight per feature; a candidate's score is features @ weights.
RULE_PRIOR is the interest-overlap rule's ranking as such weights (prior.py: where the actor
starts when the logs say nothing better).
Row 0 of every table is padding (missing history slots, unknown services): all features 0.

popularity and value_rate are counted on the training logs, so on a training request they
would include what that very request's shown services earned: the learner would see them
predict the outcome better than they can on any request they were not counted on (a service
clicked once in 20 showings has that click in its own rate). `Tallies.held_out` gives a
training request's features with its own outcomes taken out (leave-one-out), so that the
actor-critic weights them as they will be at serving.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional

FEATURES = (
    "overlap",
    "any_overlap",
    "interest_cosine",
    "history_mean",
    "history_max",
    "history_interests",
    "popularity",
    "popular_overlap",
    "value_rate",
)
MAX_OVERLAP = 3.0
# The interest-overlap rule as a direction over FEATURES (the actor's prior, networks.Actor):
# shared interests first, popularity breaking ties (one more shared interest, 1 / MAX_OVERLAP,
# outweighs any popularity difference, at most RULE_TIE_BREAK).
RULE_TIE_BREAK = 0.1
RULE_PRIOR = tuple(
    {"overlap": 1.0, "popularity": RULE_TIE_BREAK}.get(name, 0.0) for name in FEATURES
)


def log_popularity(counts: np.ndarray) -> np.ndarray:
    """Counts -> [0, 1]: log1p scaled by the largest (all zeros stay zeros)."""
    logged = np.log1p(np.asarray(counts, dtype=np.float64))
    top = logged.max(initial=0.0)
    return (logged / top if top > 0 else logged).astype(np.float32)


def interest_tokens(doc: Mapping | None) -> list[tuple[str, object]]:
    """A user's or service's declared interests as vocabulary tokens."""
    doc = doc or {}
    return [("c", c) for c in doc.get("categories") or ()] + [
        ("d", d) for d in doc.get("scientific_domains") or ()
    ]


def interest_matrix(docs: Sequence[Mapping | None], vocabulary: dict) -> np.ndarray:
    """Dense 0/1 [len(docs) + 1, V] (row 0: padding); tokens outside `vocabulary` are ignored
    (an interest no service carries cannot overlap)."""
    out = np.zeros((len(docs) + 1, len(vocabulary)), dtype=np.float32)
    for row, doc in enumerate(docs, start=1):
        columns = [vocabulary[t] for t in interest_tokens(doc) if t in vocabulary]
        out[row, columns] = 1.0
    return out


def vocabulary_of(docs: Iterable[Mapping | None]) -> dict:
    vocabulary: dict = {}
    for doc in docs:
        for token in interest_tokens(doc):
            vocabulary.setdefault(token, len(vocabulary))
    return vocabulary


@dataclass(frozen=True)
class ServiceTable:
    """Per service row (row 0: padding): unit content embedding, declared interests, and the
    training statistics (see STATISTICS)."""

    embeddings: torch.Tensor  # float [S + 1, E]
    interests: torch.Tensor  # float 0/1 [S + 1, V]
    popularity: torch.Tensor  # float [S + 1], in [0, 1]
    value_rate: torch.Tensor  # float [S + 1], in [0, 1]

    @classmethod
    def build(
        cls,
        embeddings: np.ndarray,
        interests: np.ndarray,
        popularity: np.ndarray,
        value_rate: np.ndarray,
    ) -> ServiceTable:
        """Arrays WITHOUT the padding row (one row per service); it is added here."""

        def padded(array: np.ndarray) -> torch.Tensor:
            array = np.asarray(array, dtype=np.float32)
            pad = np.zeros((1, *array.shape[1:]), dtype=np.float32)
            return torch.from_numpy(np.concatenate([pad, array]))

        return cls(padded(embeddings), padded(interests), padded(popularity), padded(value_rate))


# The per-service statistics a trained model keeps (training data), by ServiceTable field.
STATISTICS = ("popularity", "value_rate")
PRIOR_SHOWINGS = 10.0  # value_rate's shrinkage: a service shown this often is half its own


def value_rates(values: np.ndarray, showings: np.ndarray) -> np.ndarray:
    """Per service: (value earned + PRIOR_SHOWINGS x the mean rate) / (showings +
    PRIOR_SHOWINGS), scaled by the largest to [0, 1]."""
    values, showings = np.asarray(values, np.float64), np.asarray(showings, np.float64)
    rates = _rates(values, showings, _mean_rate(values, showings))
    top = rates.max(initial=0.0)
    return (rates / top if top > 0 else rates).astype(np.float32)


def _mean_rate(values, showings) -> float:
    return float(values.sum() / max(float(showings.sum()), 1.0))


def _rates(values, showings, mean: float):
    return (values + PRIOR_SHOWINGS * mean) / (showings + PRIOR_SHOWINGS)


@dataclass(frozen=True)
class Tallies:
    """The counts behind a table's popularity and value_rate (rows as the table's, row 0:
    padding), for the training requests' leave-one-out features."""

    events: torch.Tensor  # float [S + 1] popularity events (clicks, orders, accesses)
    earned: torch.Tensor  # float [S + 1] value earned in the training logs
    showings: torch.Tensor  # float [S + 1] times shown there

    RECOUNTED = ("popularity", "popular_overlap", "value_rate")  # the features held_out changes

    @classmethod
    def build(cls, events: np.ndarray, earned: np.ndarray, showings: np.ndarray) -> Tallies:
        """Arrays WITHOUT the padding row, as given to log_popularity and value_rates."""

        def padded(array: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(np.concatenate([[0.0], array]).astype(np.float64))

        return cls(padded(events), padded(earned), padded(showings))

    def held_out(
        self,
        features: torch.Tensor,
        candidates: torch.Tensor,
        shown: torch.Tensor,
        values: torch.Tensor,
    ) -> torch.Tensor:
        """`features` [B, C, F] of logged requests whose tallies included their own outcomes
        (the services shown at columns `shown` [B, K], -1: none, earning `values` [B, K]),
        with popularity, popular_overlap and value_rate recomputed without them, on the
        table's scale (log_popularity's and value_rates' largest of all services)."""
        own_shown = torch.zeros(candidates.shape, dtype=torch.float64)
        own_value = torch.zeros(candidates.shape, dtype=torch.float64)
        logged = (shown >= 0).double()
        columns = shown.clamp_min(0)
        own_shown.scatter_add_(1, columns, logged)
        own_value.scatter_add_(1, columns, values.double() * logged)
        own_click = (own_value > 0).double()
        top_events = torch.log1p(self.events.max()).clamp_min(1e-12)
        popularity = torch.log1p((self.events[candidates] - own_click).clamp_min(0.0)) / top_events
        mean = _mean_rate(self.earned[1:], self.showings[1:])
        top_rate = _rates(self.earned[1:], self.showings[1:], mean).max().clamp_min(1e-12)
        rate = _rates(
            (self.earned[candidates] - own_value).clamp_min(0.0),
            (self.showings[candidates] - own_shown).clamp_min(0.0),
            mean,
        )
        out = features.clone()
        real = (candidates > 0).to(features.dtype)
        column = FEATURES.index
        out[..., column("popularity")] = popularity.to(features.dtype) * real
        out[..., column("popular_overlap")] = (
            out[..., column("popularity")] * features[..., column("any_overlap")]
        )
        out[..., column("value_rate")] = (rate / top_rate).to(features.dtype) * real
        return out


@dataclass(frozen=True)
class States:
    """A batch of request states: the user's embedding and interests, and history rows."""

    user: torch.Tensor  # float [B, UE] (zeros: unknown user)
    interests: torch.Tensor  # float 0/1 [B, V]
    history: torch.Tensor  # long [B, N] service rows, most recent last, 0: padding

    def __len__(self) -> int:
        return len(self.user)


def history_summary(
    table: ServiceTable, history: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean history embedding, unit-normalised [B, E]; the history's rows [B, N, E])."""
    rows = table.embeddings[history]
    return functional.normalize(rows.sum(dim=1), dim=-1), rows


def state_vector(table: ServiceTable, states: States) -> torch.Tensor:
    """[B, UE + E + 2]: user embedding, mean history embedding, how many interests the user
    declared and how much history there is (both scaled to about [0, 1])."""
    mean, _ = history_summary(table, states.history)
    declared = states.interests.sum(dim=1, keepdim=True) / (2 * MAX_OVERLAP)
    length = (states.history > 0).float().mean(dim=1, keepdim=True)
    return torch.cat([states.user, mean, declared.clamp(max=1.0), length], dim=1)


def overlap_counts(table: ServiceTable, states: States, candidates: torch.Tensor) -> torch.Tensor:
    """[B, C] declared interests each candidate shares with the request's user."""
    return torch.einsum("bcv,bv->bc", table.interests[candidates], states.interests)


def candidate_features(
    table: ServiceTable, states: States, candidates: torch.Tensor
) -> torch.Tensor:
    """[B, C, F] features of each request's candidate rows [B, C] (0: padding, all zeros)."""
    mean, history = history_summary(table, states.history)
    content = table.embeddings[candidates]  # [B, C, E]
    interests = table.interests[candidates]  # [B, C, V]
    overlap = overlap_counts(table, states, candidates)
    sizes = table.interests[candidates].sum(dim=2) * states.interests.sum(dim=1, keepdim=True)
    interest_cosine = overlap / sizes.clamp_min(1.0).sqrt()
    past = functional.normalize(table.interests[states.history].sum(dim=1), dim=-1)
    history_interests = torch.einsum("bcv,bv->bc", functional.normalize(interests, dim=-1), past)
    any_overlap = (overlap > 0).float()
    history_mean = torch.einsum("bce,be->bc", content, mean)
    history_max = torch.einsum("bce,bne->bcn", content, history).amax(dim=2).clamp_min(0.0)
    popularity = table.popularity[candidates]
    real = (candidates > 0).float()
    features = torch.stack(
        [
            overlap.clamp(max=MAX_OVERLAP) / MAX_OVERLAP,
            any_overlap,
            interest_cosine,
            history_mean,
            history_max,
            history_interests,
            popularity,
            popularity * any_overlap,
            table.value_rate[candidates],
        ],
        dim=2,
    )
    return features * real.unsqueeze(2)


def features_at(features: torch.Tensor, columns: np.ndarray) -> np.ndarray:
    """[B, K, F] of `features` [B, C, F] at candidate `columns` [B, K] (zeros where -1: a
    position nothing was logged at)."""
    array = features.numpy()
    picked = np.take_along_axis(array, np.maximum(columns, 0)[:, :, None], axis=1)
    return picked * (columns >= 0)[:, :, None]


def scores(features: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """[B, C] = features [B, C, F] @ weights [B, F]."""
    return torch.einsum("bcf,bf->bc", features, weights)
