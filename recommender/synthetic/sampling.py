"""Vectorised draws shared by the generators: sparse ids, weighted subsets, unique names."""

from __future__ import annotations

import re
import uuid

import numpy as np


def sparse_ids(rng: np.random.Generator, n: int, first: int = 1) -> np.ndarray:
    """`n` increasing ids from `first` with random gaps (a real catalogue's ids are not 1..n)."""
    steps = rng.choice([1, 1, 1, 2, 3, 7], size=n)
    if n:
        steps[0] = 0
    return first + np.cumsum(steps)


def counts(rng: np.random.Generator, n: int, low: int, high: int, p: float) -> np.ndarray:
    """How many items each of `n` rows gets: `low` plus Binomial(high - low, p)."""
    return low + rng.binomial(high - low, p, size=n)


def weighted_subsets(
    rng: np.random.Generator,
    weights: np.ndarray,
    sizes: np.ndarray,
    ids: np.ndarray,
    groups: np.ndarray | None = None,
) -> list[list[int]]:
    """Per row, `sizes[i]` distinct `ids` drawn without replacement, proportionally to weights,
    listed in `ids` order.

    `weights` (strictly positive) is one row of len(ids) for all rows, or one per group with
    `groups` giving each row's group. Gumbel top-k: the k largest log(weight) + Gumbel noise
    are an exact weighted draw without replacement, for all rows at once.
    """
    rows, width = len(sizes), len(ids)
    sizes = np.minimum(sizes, width)
    top = int(sizes.max(initial=0))
    if top == 0:
        return [[] for _ in range(rows)]
    log_weights = np.log(weights)
    keys = rng.gumbel(size=(rows, width))
    keys += log_weights if groups is None else log_weights[groups]
    best = np.argpartition(keys, width - top, axis=1)[:, width - top :]
    order = np.argsort(-np.take_along_axis(keys, best, axis=1), axis=1)
    picked = np.take_along_axis(best, order, axis=1)
    # Each row's first `size` picks in `ids` order, vectorised: the unused tail sorts last
    # (as index `width`, which maps to a placeholder that the slicing drops).
    unused = np.arange(top) >= sizes[:, None]
    picked = np.sort(np.where(unused, width, picked), axis=1)
    chosen = np.concatenate([ids, ids[:1]])[picked].tolist()
    return [row[:size] for row, size in zip(chosen, sizes.tolist(), strict=True)]


def ragged(values: np.ndarray, owners: np.ndarray, n: int) -> list[list[int]]:
    """Group `values` by `owners` (0..n-1, already sorted by owner), keeping their order."""
    ends = np.cumsum(np.bincount(owners, minlength=n)).tolist()
    flat = values.tolist()
    starts = [0, *ends][:-1]
    return [flat[start:end] for start, end in zip(starts, ends, strict=True)]


def first_occurrences(owners: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Indices of the first (owner, value) occurrence of each pair, in their original order."""
    keys = owners.astype(np.int64) * (int(values.max(initial=0)) + 1) + values
    _, first = np.unique(keys, return_index=True)
    return np.sort(first)


def unique_names(rng: np.random.Generator, n: int, *parts: list[str]) -> list[str]:
    """`n` distinct names, each one word from every list in `parts` (numbered past the combos)."""
    shape = [len(words) for words in parts]
    total = int(np.prod(shape))
    picks = np.concatenate(
        [rng.permutation(total) for _ in range(-(-n // total))] if n else [np.zeros(0, int)]
    )[:n]
    coords = zip(*(axis.tolist() for axis in np.unravel_index(picks, shape)), strict=True)
    names = []
    for index, coord in enumerate(coords):
        round_ = index // total
        words = " ".join(words[i] for words, i in zip(parts, coord, strict=True))
        names.append(words + (f" {round_ + 1}" if round_ else ""))
    return names


def slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def uuids(rng: np.random.Generator, n: int) -> list[str]:
    """`n` version-4 UUIDs drawn from `rng` (reproducible, unlike uuid4)."""
    raw = rng.integers(0, 256, size=(n, 16), dtype=np.uint8)
    return [str(uuid.UUID(bytes=row.tobytes(), version=4)) for row in raw]
