"""One read of the store per training chain.

Inside `snapshot()`, a reader decorated with `read_once` scans the store on its first call with
given arguments and every later call with the same arguments gets that same result; outside
one, every call reads afresh. The `/update` chain runs its stages inside one snapshot, so the
stages that share a read (the collaborative engines' interactions) scan the collections once
and train on the same data even while user actions keep arriving. A kept read stays in memory
until the chain ends: only compact reads are worth keeping (the autoencoders' users and
services, read by two consecutive stages, are not kept). A kept result's numpy arrays are
made read-only: a stage that wrote into one would change what the next stage reads.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import ParamSpec, TypeVar

import numpy as np

P = ParamSpec("P")
R = TypeVar("R")

_READS: ContextVar[dict[tuple[Hashable, ...], object] | None] = ContextVar(
    "store_snapshot", default=None
)


@contextmanager
def snapshot() -> Iterator[None]:
    """Within this block, each `read_once` reader reads once per distinct arguments; the
    results are dropped when the block ends (a nested block shares its parent's)."""
    if _READS.get() is not None:
        yield
        return
    token = _READS.set({})
    try:
        yield
    finally:
        _READS.reset(token)


def read_once(reader: Callable[P, R]) -> Callable[P, R]:
    """`reader`, reading once per snapshot (see the module doc); a call with unhashable
    arguments reads afresh."""

    @functools.wraps(reader)
    def read(*args: P.args, **kwargs: P.kwargs) -> R:
        reads = _READS.get()
        if reads is None:
            return reader(*args, **kwargs)
        key = (reader.__module__, reader.__qualname__, args, tuple(sorted(kwargs.items())))
        try:
            hash(key)
        except TypeError:  # e.g. a list of ids: a one-off read, not shared
            return reader(*args, **kwargs)
        if key not in reads:
            reads[key] = _read_only(reader(*args, **kwargs))
        return reads[key]  # type: ignore[return-value]

    return read


def _read_only(value: R) -> R:
    """`value` with every numpy array it holds made read-only: arrays reached through
    dataclass fields, attributes, mapping values and sequence items, at any depth."""
    pending: list[object] = [value]
    seen: set[int] = set()
    while pending:
        item = pending.pop()
        if id(item) in seen or isinstance(item, str | bytes | int | float | bool | type(None)):
            continue
        seen.add(id(item))
        if isinstance(item, np.ndarray):
            item.flags.writeable = False
        elif isinstance(item, dict):
            pending.extend(item.values())
        elif isinstance(item, list | tuple):
            pending.extend(item)
        elif hasattr(item, "__dict__") and not isinstance(item, type):
            pending.extend(vars(item).values())
        elif dataclasses.is_dataclass(item):  # slotted dataclasses have no __dict__
            pending.extend(getattr(item, field.name) for field in dataclasses.fields(item))
    return value
