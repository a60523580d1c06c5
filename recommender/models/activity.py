"""What happens on the Marketplace: recommendations served and user actions."""

from __future__ import annotations

import hashlib

from mongoengine import (
    BooleanField,
    DateTimeField,
    DictField,
    Document,
    EmbeddedDocument,
    EmbeddedDocumentField,
    FloatField,
    IntField,
    ListField,
    StringField,
)


class SearchData(EmbeddedDocument):
    """The search context a recommendation was asked in (the request's `search_data`)."""

    q = StringField(null=True)
    categories = ListField(IntField())
    geographical_availabilities = ListField(StringField())
    order_type = StringField(null=True)
    providers = ListField(IntField())
    related_platforms = ListField(IntField())
    scientific_domains = ListField(IntField())
    sort = StringField(null=True)
    target_users = ListField(IntField())


class Recommendation(Document):
    user = IntField(null=True)
    aai_uid = StringField(null=True)
    unique_id = StringField(required=True)  # UUID, canonical text
    client_id = StringField(null=True)
    timestamp = DateTimeField(required=True)
    visit_id = StringField(null=True)  # UUID, canonical text
    page_id = StringField()
    panel_id = StringField()
    engine_version = StringField()
    services = ListField(IntField())
    scores = ListField(FloatField())
    candidates = ListField(IntField())
    search_data = EmbeddedDocumentField(SearchData, default=SearchData)
    processed = BooleanField(default=False)
    served_at = DateTimeField(null=True)  # server clock (`timestamp` is the client's)
    # The online experiment (id) and variant that served it, when one did; the clicks attributed
    # to it so far (the experiment results' per-impression count).
    experiment = StringField(null=True)
    variant = StringField(null=True)
    experiment_clicks = IntField(default=0)
    # The policy that chose `services` among `candidates` (engine, model_version, experiment,
    # variant, exploration: {method, epsilon, temperature, pool}, seed), P(each shown service
    # at its position) and P(the whole slate in order), for off-policy evaluation
    # (docs/engines.md). Absent from recommendations stored before they were recorded.
    policy = DictField(null=True, default=None)
    propensities = ListField(FloatField(), null=True, default=None)
    slate_propensity = FloatField(null=True)
    # The databus outbox (Marketplace recommendations only, while publishing is on): False
    # until the broker confirmed the message, then True. `request` (the body as received) and
    # the explanations are kept to rebuild the message; a sender holds `publish_claim` (its
    # token) until `publish_claim_expires`.
    published = BooleanField(null=True)
    request = StringField(null=True)
    explanations = ListField(StringField(), null=True)
    explanations_short = ListField(StringField(), null=True)
    publish_claim = StringField(null=True)
    publish_claim_expires = DateTimeField(null=True)
    published_at = DateTimeField(null=True)
    meta = {
        "indexes": [
            "visit_id",
            "user",
            "unique_id",
            "timestamp",
            "processed",
            ("experiment", "served_at"),
            # Only documents that carry the flag (Marketplace ones): the outbox scan stays small.
            {"fields": ["published"], "sparse": True},
            # The dashboard's look-ups: a user's newest recommendations, by id or aai_uid.
            ("user", "-timestamp"),
            ("aai_uid", "-timestamp"),
        ],
    }


class Root(EmbeddedDocument):
    type = StringField(required=True)
    panel_id = StringField(null=True)
    resource_type = StringField(null=True)
    # Marketplace services have integer ids; other clients' resources may have string ids.
    service = IntField(null=True)
    resource_id = StringField(null=True)


class Source(EmbeddedDocument):
    visit_id = StringField(null=True)
    page_id = StringField(required=True)
    root = EmbeddedDocumentField(Root, null=True)


class Target(EmbeddedDocument):
    visit_id = StringField(required=True)
    page_id = StringField(required=True)


class Action(EmbeddedDocument):
    type = StringField(required=True)
    text = StringField(required=True)
    order = BooleanField(required=True)


class UserAction(Document):
    user = IntField(null=True)
    aai_uid = StringField(null=True)
    unique_id = StringField(required=True)
    client_id = StringField(null=True)
    timestamp = DateTimeField(required=True)
    source = EmbeddedDocumentField(Source, required=True)
    target = EmbeddedDocumentField(Target, required=True)
    action = EmbeddedDocumentField(Action, required=True)
    # Where it came from: "http" or "databus", and when it was stored (server clock).
    channel = StringField(default="http")
    received_at = DateTimeField(null=True)
    # Hash of the action's content, stored as `_id`: the same action sent twice (HTTP and
    # databus) is stored once, checked by the primary key (no unique secondary index to keep).
    fingerprint = StringField(primary_key=True)
    processed = BooleanField(default=False)
    meta = {
        "indexes": [
            ("source.visit_id", "source.root.service"),
            "target.visit_id",
            "user",
            "unique_id",
            "timestamp",
            "source.root.type",
            "processed",
            "received_at",
        ],
    }


def action_fingerprint(action: UserAction) -> str:
    """A stable hash of what identifies one user action, whichever channel brought it."""
    root = action.source.root
    parts = [
        action.unique_id,
        action.timestamp.isoformat(),
        action.source.visit_id or "",
        action.source.page_id,
        (root.type if root else "") or "",
        str(
            root.service
            if root and root.service is not None
            else (root.resource_id if root else "")
        ),
        action.target.visit_id,
        action.target.page_id,
        action.action.type,
        action.action.text,
        str(bool(action.action.order)),
    ]
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()
