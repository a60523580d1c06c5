"""Traffic rollups: every answer and user action counted per 5-minute bucket, summed over the
last hour and day without reading the stored recommendations or actions."""

from __future__ import annotations

import datetime as dt
import time

from recommender.models.traffic import TRAFFIC_BUCKET_S, RecommendationTraffic
from recommender.services import traffic
from recommender.services.bookkeeping import writer
from tests.api.helpers import body, load
from tests.user_actions.payloads import user_action

NOW = dt.datetime(2026, 3, 2, 12, 7, 30, tzinfo=dt.UTC).timestamp()


def test_a_moment_falls_in_the_bucket_that_starts_at_its_5_minutes():
    assert traffic.bucket_of(NOW) == dt.datetime(2026, 3, 2, 12, 5)
    assert traffic.bucket_of(NOW + 149.9) == dt.datetime(2026, 3, 2, 12, 5)
    assert traffic.bucket_of(NOW + 150) == dt.datetime(2026, 3, 2, 12, 10)


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
    assert RecommendationTraffic.objects.count() == len(expected)  # one counter each, not a row


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


def test_buckets_count_towards_the_hour_and_the_day_they_started_in(app):
    now = time.time()  # the store's TTL index would drop buckets of a fixed past day
    collection = RecommendationTraffic._get_collection()
    current = traffic.bucket_of(now)
    step = dt.timedelta(seconds=TRAFFIC_BUCKET_S)
    counts = {
        current: 1,  # the current bucket, still filling
        current - 11 * step: 10,  # the oldest bucket of the hour
        current - 12 * step: 100,  # an hour before the current one: the day's
        current - dt.timedelta(days=1) + step: 1000,  # the oldest of the day
        current - dt.timedelta(days=1): 10000,  # a day before: neither
    }
    collection.insert_many(
        [{"bucket": b, "engine": "NCF", "panel_id": "v1", "count": n} for b, n in counts.items()]
    )
    [row] = traffic.recommendations(now)
    assert (row.labels, row.hour, row.day) == (("NCF", "v1"), 11, 1111)
