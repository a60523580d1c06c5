"""Traffic rollups: every answer and user action counted per 5-minute bucket, summed over the
last hour and day without reading the stored recommendations or actions."""

from __future__ import annotations

import datetime as dt
import time

from recommender.models.traffic import RecommendationTraffic
from recommender.services import traffic
from recommender.services.bookkeeping import writer
from tests.api.helpers import body, load
from tests.user_actions.payloads import user_action

NOW = dt.datetime(2026, 3, 2, 12, 7, 30, tzinfo=dt.UTC).timestamp()


def test_a_moment_falls_in_the_bucket_that_starts_at_its_5_minutes_or_its_hour():
    assert traffic.bucket_of(NOW) == dt.datetime(2026, 3, 2, 12, 5)
    assert traffic.bucket_of(NOW + 149.9) == dt.datetime(2026, 3, 2, 12, 5)
    assert traffic.bucket_of(NOW + 150) == dt.datetime(2026, 3, 2, 12, 10)
    assert traffic.bucket_of(NOW, 3600) == dt.datetime(2026, 3, 2, 12, 0)


def test_answers_are_counted_per_engine_and_panel(client):
    load()
    requests = [body(panel_id=panel, client_id="user_dashboard") for panel in ("v1", "v1", "v2")]
    engines = [client.post("/recommendations", json=r).json["engine_version"] for r in requests]
    writer.flush()
    counted = {row.labels: (row.hour, row.day) for row in traffic.recommendations()}
    expected: dict[tuple[str, str], tuple[int, int]] = {}
    for engine, panel in zip(engines, ("v1", "v1", "v2"), strict=True):
        hour, day = expected.get((engine, panel), (0, 0))
        expected[engine, panel] = (hour + 1, day + 1)
    assert counted == expected
    # One counter per 5 minutes and one per hour each, not a row per answer, each deleted
    # by MongoDB (TTL) 2 hours or 2 days after it started.
    counters = list(RecommendationTraffic.objects)
    assert len(counters) == 2 * len(expected)
    kept = {c.span: (c.expires_at - c.bucket).total_seconds() for c in counters}
    assert kept == {300: 2 * 3600, 3600: 2 * 24 * 3600}


def test_user_actions_are_counted_per_source_and_outcome(client):
    action = user_action()
    assert client.post("/user_actions", json=action).status_code == 204
    assert client.post("/user_actions", json=action).status_code == 204  # a duplicate
    assert client.post("/user_actions", json=user_action(unique_id="x")).status_code == 400
    assert client.post("/user_actions", data="[", content_type="application/json").status_code
    writer.flush()
    assert {row.labels: row.day for row in traffic.user_actions()} == {
        ("http", "duplicate"): 1,
        ("http", "rejected"): 2,
        ("http", "stored"): 1,
    }


def test_the_hour_sums_5_minute_buckets_and_the_day_hourly_ones(app):
    now = time.time()  # the store's TTL index would drop buckets of a fixed past day
    five, hour = dt.timedelta(minutes=5), dt.timedelta(hours=1)
    minutes, hours = traffic.bucket_of(now), traffic.bucket_of(now, 3600)
    counts = {
        (300, minutes): 1,  # the current 5 minutes, still filling
        (300, minutes - 11 * five): 10,  # the oldest of the hour
        (300, minutes - 12 * five): 100,  # before the hour
        (3600, hours): 1000,  # the current hour
        (3600, hours - 23 * hour): 10000,  # the oldest of the day
        (3600, hours - 24 * hour): 100000,  # before the day
    }
    RecommendationTraffic._get_collection().insert_many(
        [
            {"span": span, "bucket": bucket, "engine": "NCF", "panel_id": "v1", "count": n}
            for (span, bucket), n in counts.items()
        ]
    )
    [row] = traffic.recommendations(now)
    assert (row.labels, row.hour, row.day) == (("NCF", "v1"), 11, 11000)
