"""The databus outbox is the stored Recommendation: Marketplace ones wait with `published`
False until a sender has the broker's receipt for their message.

Senders take a batch with a claim (a token and an expiry) set atomically per document, so two
senders never hold the same document, and a claim left by a sender that died expires and the
next run sends that document again. Every operation is a plain MongoDB update (no transaction).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable

from recommender.models.activity import Recommendation
from recommender.models.ops import utcnow
from recommender.store import get_db

CLAIM_FIELDS = {"publish_claim": "", "publish_claim_expires": ""}


def _collection():
    return get_db()[Recommendation._get_collection_name()]


def _unclaimed(now: dt.datetime) -> dict:
    return {
        "published": False,
        "$or": [{"publish_claim": None}, {"publish_claim_expires": {"$lt": now}}],
    }


def claim(limit: int, ttl_s: float) -> tuple[str, list[dict]]:
    """(token, up to `limit` waiting documents, oldest first, now held under that token)."""
    token = uuid.uuid4().hex
    now = utcnow()
    free = _unclaimed(now)
    ids = [doc["_id"] for doc in _collection().find(free, {"_id": 1}).sort("_id", 1).limit(limit)]
    if not ids:
        return token, []
    # The condition is checked again per document: one another sender took meanwhile is skipped.
    _collection().update_many(
        {"_id": {"$in": ids}, **free},
        {
            "$set": {
                "publish_claim": token,
                "publish_claim_expires": now + dt.timedelta(seconds=ttl_s),
            }
        },
    )
    return token, list(_collection().find({"publish_claim": token}).sort("_id", 1))


def mark_published(document_id, token: str) -> None:
    """The broker confirmed the document's message."""
    _collection().update_one(
        {"_id": document_id, "publish_claim": token},
        {"$set": {"published": True, "published_at": utcnow()}, "$unset": CLAIM_FIELDS},
    )


def release(document_ids: Iterable, token: str) -> None:
    """Give documents back unsent: the next run takes them."""
    _collection().update_many(
        {"_id": {"$in": list(document_ids)}, "publish_claim": token}, {"$unset": CLAIM_FIELDS}
    )


def waiting() -> int:
    """How many documents wait to be published."""
    return _collection().count_documents({"published": False})
