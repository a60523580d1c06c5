"""Traffic rollups: how many recommendations and user actions the service handled, per
5 minutes and per hour.

The dashboard reads these small counters instead of counting the stored recommendations and
actions (millions of documents): the last hour from twelve 5-minute buckets, the last day from
24 hourly ones. Requests add to both through the deferred writer; MongoDB deletes a bucket at
its `expires_at` (a TTL index): 5-minute ones after 2 hours, hourly ones after 2 days, so the
collections stay a few thousand documents.
"""

from __future__ import annotations

from mongoengine import DateTimeField, Document, IntField, StringField

SPANS_S = (300, 3600)  # a bucket's length: 5 minutes or an hour
KEPT_S = {300: 2 * 3600, 3600: 2 * 24 * 3600}  # per span: how long after its start


def _indexes(*labels: str) -> list[dict]:
    """One counter per span, bucket and labels (unique, over every field an upsert names, so
    that MongoDB retries one that raced another; it also serves the reads: a span's buckets
    since a time), and the TTL index."""
    return [
        {"fields": ("span", "bucket", "expires_at", *labels), "unique": True},
        {"fields": ("expires_at",), "expireAfterSeconds": 0},
    ]


class TrafficBucket(Document):
    span = IntField(required=True, choices=SPANS_S)  # seconds
    bucket = DateTimeField(required=True)  # the bucket's start (UTC)
    expires_at = DateTimeField(required=True)  # bucket + KEPT_S[span]
    count = IntField(default=0)
    meta = {"abstract": True}


class RecommendationTraffic(TrafficBucket):
    """Answers to `POST /recommendations` in one bucket, per engine that answered and panel."""

    engine = StringField(required=True)
    panel_id = StringField(required=True)
    meta = {"indexes": _indexes("engine", "panel_id")}


class UserActionTraffic(TrafficBucket):
    """User actions in one bucket, per source (http, databus) and outcome (stored, duplicate,
    rejected)."""

    source = StringField(required=True)
    outcome = StringField(required=True)
    meta = {"indexes": _indexes("source", "outcome")}
