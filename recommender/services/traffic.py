"""Traffic rollups (recommender/models/traffic.py): counted as requests are answered, summed for
the dashboard over the last hour and day.

Counting costs a request a dictionary update: the deferred writer adds the counts up and writes
one upsert per counter every few seconds. Reading sums at most a day of 5-minute buckets per
counter (one aggregation on the `bucket` index), whatever the number of stored documents.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass

from mongoengine import Document

from recommender.models.traffic import TRAFFIC_BUCKET_S, RecommendationTraffic, UserActionTraffic
from recommender.services.bookkeeping import writer

STORED, DUPLICATE, REJECTED = "stored", "duplicate", "rejected"
OUTCOMES = (STORED, DUPLICATE, REJECTED)
HOUR, DAY = dt.timedelta(hours=1), dt.timedelta(days=1)


def bucket_of(moment: float) -> dt.datetime:
    """The start (naive UTC, as stored) of the bucket holding `moment` (epoch seconds)."""
    start = moment - moment % TRAFFIC_BUCKET_S
    return dt.datetime.fromtimestamp(start, dt.UTC).replace(tzinfo=None)


def count_served(engine: str, panel: str) -> None:
    """One answer of `engine` for `panel`, now."""
    key = {"bucket": bucket_of(time.time()), "engine": engine, "panel_id": panel}
    writer.increment(RecommendationTraffic._get_collection(), key)


def count_actions(source: str, outcome: str, amount: int) -> None:
    """`amount` user actions from `source` ("http", "databus") that were `outcome`, now."""
    if amount:
        key = {"bucket": bucket_of(time.time()), "source": source, "outcome": outcome}
        writer.increment(UserActionTraffic._get_collection(), key, amount)


@dataclass(frozen=True)
class Counted:
    """One counter's totals: the last hour's and the last day's."""

    labels: tuple[str, ...]
    hour: int
    day: int


def _recent(document: type[Document], labels: tuple[str, ...], now: float) -> list[Counted]:
    """Per distinct `labels`, the counts of the buckets that started in the last hour and day
    (the current bucket included: each span is its length to within one bucket)."""
    current = bucket_of(now)
    since_hour = current - HOUR + dt.timedelta(seconds=TRAFFIC_BUCKET_S)
    since_day = current - DAY + dt.timedelta(seconds=TRAFFIC_BUCKET_S)
    rows = document._get_collection().aggregate(
        [
            {"$match": {"bucket": {"$gte": since_day}}},
            {
                "$group": {
                    "_id": {label: f"${label}" for label in labels},
                    "day": {"$sum": "$count"},
                    "hour": {"$sum": {"$cond": [{"$gte": ["$bucket", since_hour]}, "$count", 0]}},
                }
            },
        ]
    )
    counted = [
        Counted(tuple(row["_id"][label] for label in labels), row["hour"], row["day"])
        for row in rows
    ]
    return sorted(counted, key=lambda row: row.labels)


def recommendations(now: float | None = None) -> list[Counted]:
    """Answers per (engine, panel)."""
    return _recent(RecommendationTraffic, ("engine", "panel_id"), now or time.time())


def user_actions(now: float | None = None) -> list[Counted]:
    """User actions per (source, outcome)."""
    return _recent(UserActionTraffic, ("source", "outcome"), now or time.time())
