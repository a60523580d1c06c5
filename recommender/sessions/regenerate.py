"""Incremental, crash-safe SARS regeneration from the stored traffic (`flask db regenerate_sarses`).

One run:
1. reads the recommendations and user actions once each (projected, no candidates), plus the
   accessed services of the users involved;
2. finds the visitors touched by anything not yet processed: the visitor of a new
   recommendation or action, and the visitor of every recommendation a new action's journey
   leads back to (a late order deep in an old journey changes that recommendation's reward);
3. rebuilds the SARS of all those visitors' recommendations (their histories, rewards and
   terminal flags may all have moved), reading the candidates and search data of those
   recommendations only, in chunks;
4. writes them keyed by `source_recommendation`: inserted in bulk when new, replaced in place
   when stored already (idempotent: a rerun never duplicates, and a stored SARS is never
   missing for a moment), and removes those of recommendations that no longer make one;
5. only then marks processed exactly the documents it read as unprocessed.
A crash anywhere before step 5 leaves them unprocessed, so the next run redoes the same work;
documents arriving during a run stay unprocessed for the next one. One run at a time (a lease).
Synthetic SARS are never touched.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Iterable, Iterator, Sequence
from itertools import islice
from typing import Any

from pymongo import DeleteMany, UpdateMany

from recommender.models.activity import Recommendation, UserAction
from recommender.models.marketplace import User
from recommender.models.sars import Sars
from recommender.sessions.journeys import (
    ACTION_FIELDS,
    RECOMMENDATION_FIELDS,
    ActionRecord,
    Journeys,
    RecRecord,
    UserKey,
    Visitors,
)
from recommender.sessions.sarses import build_sarses
from recommender.store import get_db, leases

logger = logging.getLogger(__name__)
CHUNK = 1000
LEASE = "sars-regeneration"
LEASE_TTL_S = 3600.0


def chunks(values: Sequence, size: int = CHUNK) -> Iterator[list]:
    iterator = iter(values)
    while chunk := list(islice(iterator, size)):
        yield chunk


def _collection(document) -> Any:
    return get_db()[document._get_collection_name()]


def read_recommendations() -> list[RecRecord]:
    return [
        RecRecord.from_doc(d) for d in _collection(Recommendation).find({}, RECOMMENDATION_FIELDS)
    ]


def read_actions() -> list[ActionRecord]:
    return [ActionRecord.from_doc(d) for d in _collection(UserAction).find({}, ACTION_FIELDS)]


def read_accessed(user_ids: Iterable[int]) -> dict[int, list[int]]:
    wanted = sorted(set(user_ids))
    accessed: dict[int, list[int]] = {}
    for chunk in chunks(wanted):
        for doc in _collection(User).find({"_id": {"$in": chunk}}, {"accessed_services": 1}):
            accessed[doc["_id"]] = list(doc.get("accessed_services") or ())
    return accessed


def fill_contexts(recs: Sequence[RecRecord]) -> None:
    """Read the candidates and search data of `recs` (in chunks) into them."""
    by_id = {rec.id: rec for rec in recs}
    for chunk in chunks(list(by_id)):
        found = _collection(Recommendation).find(
            {"_id": {"$in": chunk}}, {"candidates": 1, "search_data": 1}
        )
        for doc in found:
            rec = by_id[doc["_id"]]
            rec.candidates = list(doc.get("candidates") or ())
            rec.search_data = dict(doc.get("search_data") or {})


def touched_visitors(
    recs: Sequence[RecRecord],
    actions: Sequence[ActionRecord],
    journeys: Journeys,
    visitors: Visitors,
) -> set[UserKey]:
    """Visitors whose SARS may change because of unprocessed recommendations or actions."""
    touched = {visitors.key(r.user, r.unique_id) for r in recs if not r.processed}
    new_actions = [a for a in actions if not a.processed]
    if not new_actions:
        return touched
    recs_by_visit: dict[str, list[RecRecord]] = {}
    for rec in recs:
        if rec.visit_id:
            recs_by_visit.setdefault(rec.visit_id, []).append(rec)
    for action in new_actions:
        touched.add(visitors.key(action.user, action.unique_id))
        for visit in journeys.origin_visits(action):
            for rec in recs_by_visit.get(visit, ()):
                touched.add(visitors.key(rec.user, rec.unique_id))
    return touched


def write_sarses(sarses: list[dict], rebuilt: Sequence[RecRecord]) -> int:
    """Store each SARS once per recommendation: new ones inserted in bulk, those already stored
    replaced in place (by `source_recommendation`), those of rebuilt recommendations that no
    longer make one removed."""
    collection = _collection(Sars)
    stored: set = set()
    for chunk in chunks([rec.id for rec in rebuilt]):
        found = collection.find(
            {"source_recommendation": {"$in": chunk}, "synthetic": False},
            {"source_recommendation": 1},
        )
        stored.update(doc["source_recommendation"] for doc in found)
    kept = {sars["source_recommendation"] for sars in sarses}
    # UpdateMany with $set of every field is a replace (a SARS always has the same fields); it
    # is also the upsert mongomock's bulk_write supports.
    operations: list = [
        UpdateMany(
            {"source_recommendation": sars["source_recommendation"], "synthetic": False},
            {"$set": sars},
            upsert=True,
        )
        for sars in sarses
        if sars["source_recommendation"] in stored
    ]
    operations += [
        DeleteMany({"source_recommendation": {"$in": chunk}, "synthetic": False})
        for chunk in chunks([rec.id for rec in rebuilt if rec.id not in kept])
    ]
    for batch in chunks(operations):
        collection.bulk_write(batch, ordered=False)
    for batch in chunks([sars for sars in sarses if sars["source_recommendation"] not in stored]):
        collection.insert_many(batch, ordered=False)
    return len(sarses)


def mark_processed(document, ids: Sequence) -> None:
    operations = [
        UpdateMany({"_id": {"$in": chunk}}, {"$set": {"processed": True}}) for chunk in chunks(ids)
    ]
    if operations:
        _collection(document).bulk_write(operations, ordered=False)


def drop_orphans(recs: Sequence[RecRecord]) -> int:
    """Remove real SARS whose recommendation no longer exists (full regeneration only)."""
    known = {rec.id for rec in recs}
    stored = _collection(Sars).find({"synthetic": False}, {"source_recommendation": 1})
    orphans = [d["_id"] for d in stored if d.get("source_recommendation") not in known]
    for chunk in chunks(orphans):
        _collection(Sars).delete_many({"_id": {"$in": chunk}})
    return len(orphans)


class RegenerationBusyError(RuntimeError):
    """Another process is regenerating the SARS right now."""

    @classmethod
    def running_in(cls, holder: str | None) -> RegenerationBusyError:
        return cls(f"SARS regeneration is running in {holder}")


def regenerate_sarses(full: bool = False) -> dict[str, int]:
    """Bring the stored SARS up to date with the traffic (see the module doc).

    `full`: rebuild every visitor's SARS, not only the touched ones. Returns counts: new
    recommendations and actions processed, visitors and recommendations rebuilt, SARS written
    (terminal among them), orphans removed. One run at a time (a lease): raises
    RegenerationBusyError while another holds it.
    """
    holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4()}"
    with leases.held(LEASE, holder, LEASE_TTL_S, busy=RegenerationBusyError.running_in):
        return _regenerate(full)


def _regenerate(full: bool) -> dict[str, int]:
    recs, actions = read_recommendations(), read_actions()
    new_recs = [rec.id for rec in recs if not rec.processed]
    new_actions = [action.id for action in actions if not action.processed]
    journeys, visitors = Journeys(actions), Visitors(recs)
    if full:
        touched = {visitors.key(rec.user, rec.unique_id) for rec in recs}
    else:
        touched = touched_visitors(recs, actions, journeys, visitors)
    rebuilt = [rec for rec in recs if visitors.key(rec.user, rec.unique_id) in touched]
    fill_contexts(rebuilt)
    accessed = read_accessed(key[1] for key in touched if key[0] == "user")
    sarses = build_sarses(rebuilt, journeys, accessed, visitors)
    written = write_sarses(sarses, rebuilt)
    orphans = drop_orphans(recs) if full else 0
    # Only now: a crash before this line leaves everything to redo on the next run.
    mark_processed(Recommendation, new_recs)
    mark_processed(UserAction, new_actions)
    counts = {
        "recommendations": len(new_recs),
        "user_actions": len(new_actions),
        "visitors": len(touched),
        "rebuilt": len(rebuilt),
        "sarses": written,
        "terminal": sum(1 for sars in sarses if sars["terminal"]),
        "orphans": orphans,
    }
    logger.info("SARS regenerated: %s", counts)
    return counts
