"""Traffic rollups: how many recommendations and user actions the service handled, per 5 minutes.

The dashboard reads these small counters instead of counting the stored recommendations and
actions (millions of documents). Requests add to them through the deferred writer; MongoDB
deletes a bucket `TRAFFIC_KEPT_S` after it started (a TTL index).
"""

from __future__ import annotations

from mongoengine import DateTimeField, Document, IntField, StringField

TRAFFIC_BUCKET_S = 300
TRAFFIC_KEPT_S = 8 * 24 * 3600


def _indexes(*labels: str) -> list[dict]:
    """One counter per bucket and labels (unique: concurrent upserts cannot make two), and the
    TTL index."""
    return [
        {"fields": ("bucket", *labels), "unique": True},
        {"fields": ("bucket",), "expireAfterSeconds": TRAFFIC_KEPT_S},
    ]


class TrafficBucket(Document):
    bucket = DateTimeField(required=True)  # the bucket's start (UTC)
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
