"""Traffic rollups (recommender/models/traffic.py): counted as requests are answered, summed for
the dashboard over the last hour and day.

Counting costs a request two dictionary updates (its 5-minute and its hourly counter): the
deferred writer adds the counts up and writes one upsert per counter every few seconds.
Reading takes the last hour's 5-minute buckets and the last day's hourly ones (two range reads
on the (`span`, `bucket`) index): at most 36 documents per counter, whatever the number of
stored recommendations and actions.
"""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

from mongoengine import Document

from recommender.models.traffic import KEPT_S, SPANS_S, RecommendationTraffic, UserActionTraffic
from recommender.services.bookkeeping import writer

STORED, DUPLICATE, REJECTED = "stored", "duplicate", "rejected"
OUTCOMES = (STORED, DUPLICATE, REJECTED)
MINUTES, HOURS = SPANS_S


def bucket_of(moment: float, span: int = MINUTES) -> dt.datetime:
    """The start (naive UTC, as stored) of the `span`-second bucket holding `moment`."""
    start = moment - moment % span
    return dt.datetime.fromtimestamp(start, dt.UTC).replace(tzinfo=None)


def _count(document: type[Document], labels: dict[str, Any], amount: int) -> None:
    now = time.time()
    collection = document._get_collection()
    for span in SPANS_S:
        bucket = bucket_of(now, span)
        expires = bucket + dt.timedelta(seconds=KEPT_S[span])  # set when the upsert creates it
        key = {"span": span, "bucket": bucket, "expires_at": expires, **labels}
        writer.increment(collection, key, amount)


def count_served(engine: str, panel: str) -> None:
    """One answer of `engine` for `panel`, now."""
    _count(RecommendationTraffic, {"engine": engine, "panel_id": panel}, 1)


def count_actions(source: str, outcome: str, amount: int) -> None:
    """`amount` user actions from `source` ("http", "databus") that were `outcome`, now."""
    if amount:
        _count(UserActionTraffic, {"source": source, "outcome": outcome}, amount)


@dataclass(frozen=True)
class Counted:
    """One counter's totals: the last hour's and the last day's."""

    labels: tuple[str, ...]
    hour: int
    day: int


def _sums(document: type[Document], labels: tuple[str, ...], span: int, buckets: int, now: float):
    """Per distinct `labels`, the counts of the last `buckets` buckets of `span` seconds (the
    current one, still filling, included)."""
    since = bucket_of(now, span) - dt.timedelta(seconds=span * (buckets - 1))
    rows = document._get_collection().find(
        {"span": span, "bucket": {"$gte": since}},
        {"_id": 0, "count": 1, **dict.fromkeys(labels, 1)},
    )
    sums: Counter[tuple[str, ...]] = Counter()
    for row in rows:
        sums[tuple(row[label] for label in labels)] += row["count"]
    return sums


def _recent(document: type[Document], labels: tuple[str, ...], now: float) -> list[Counted]:
    """The last hour: the current 5-minute bucket and the 11 before it; the last day: the
    current hour and the 23 before it (each its length to within one bucket)."""
    hour = _sums(document, labels, MINUTES, 3600 // MINUTES, now)
    day = _sums(document, labels, HOURS, 24, now)
    return [Counted(key, hour[key], day[key]) for key in sorted(day.keys() | hour.keys())]


def recommendations(now: float | None = None) -> list[Counted]:
    """Answers per (engine, panel)."""
    return _recent(RecommendationTraffic, ("engine", "panel_id"), now or time.time())


def user_actions(now: float | None = None) -> list[Counted]:
    """User actions per (source, outcome)."""
    return _recent(UserActionTraffic, ("source", "outcome"), now or time.time())
