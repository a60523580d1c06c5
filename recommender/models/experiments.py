"""Online experiments: a split of traffic between engines, and what each variant earned."""

from __future__ import annotations

from mongoengine import (
    DateTimeField,
    DictField,
    Document,
    EmbeddedDocument,
    EmbeddedDocumentField,
    EmbeddedDocumentListField,
    FloatField,
    IntField,
    ListField,
    MapField,
    StringField,
)

from recommender.models.ops import utcnow

RUNNING, STOPPED = "running", "stopped"
STAMP = "experiments"  # bumped on every change: serving processes reload the running ones


class Variant(EmbeddedDocument):
    name = StringField(required=True)
    engine = StringField(required=True)  # a served engine name
    share = FloatField(required=True)  # of the experiment's traffic, the shares summing to 1


class Tally(EmbeddedDocument):
    """What one variant earned so far (updated incrementally, see services/experiments)."""

    impressions = IntField(default=0)  # served recommendations with at least one service
    clicks = IntField(default=0)  # panel clicks attributed to those impressions
    clicks_sq = IntField(default=0)  # sum over impressions of (clicks of the impression)^2
    orders = IntField(default=0)  # orders that followed such a click in the same session


class Experiment(Document):
    name = StringField(required=True)
    variants = EmbeddedDocumentListField(Variant, required=True)
    panels = ListField(StringField())  # empty: every panel
    clients = ListField(StringField())  # empty: every client
    status = StringField(default=RUNNING)  # running | stopped
    salt = StringField(required=True)  # the assignment hash's, fixed at creation
    created_at = DateTimeField(default=utcnow)
    stopped_at = DateTimeField(null=True)
    tallies = MapField(EmbeddedDocumentField(Tally))  # by variant name
    # How far the incremental results have read: recommendations (by when they were served) and
    # user actions (by when they were stored).
    read_recommendations_to = DateTimeField(null=True)
    read_actions_to = DateTimeField(null=True)
    results = DictField()  # the last computed results (see services/experiments/results.py)
    results_at = DateTimeField(null=True)
    meta = {"indexes": ["status", "-created_at"], "ordering": ["-created_at"]}
