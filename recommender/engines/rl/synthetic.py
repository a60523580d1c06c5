"""SARS from synthetic sessions, for when the stored traffic is too thin to learn from.

The session generator (recommender.synthetic) runs on the live catalogue (read once, projected)
and its recommendations and user actions go through exactly the journey and SARS code real
traffic goes through (recommender.sessions), in memory: nothing synthetic is stored.
"""

from __future__ import annotations

import datetime as dt

from recommender.extensions import get_db
from recommender.models.marketplace import Category, ScientificDomain, Service, User
from recommender.sessions.journeys import ActionRecord, Journeys, RecRecord, Visitors
from recommender.sessions.sarses import build_sarses
from recommender.synthetic import generate_sessions


def catalogue_dump() -> dict:
    """The parts of a dump the session generator reads, from the stored catalogue."""
    db = get_db()

    def rows(document, fields: dict) -> list[dict]:
        found = db[document._get_collection_name()].find({}, fields)
        return [{"id": d.pop("_id"), **d} for d in found]

    services = rows(Service, {"name": 1, "status": 1, "categories": 1, "scientific_domains": 1})
    users = rows(User, {"categories": 1, "scientific_domains": 1, "accessed_services": 1})
    for row in services:
        row.setdefault("name", f"service {row['id']}")
        row["categories"] = row.get("categories") or []
        row["scientific_domains"] = row.get("scientific_domains") or []
    for row in users:
        for field in ("categories", "scientific_domains", "accessed_services"):
            row[field] = row.get(field) or []
    return {
        "services": services,
        "users": users,
        "categories": rows(Category, {"_id": 1}),
        "scientific_domains": rows(ScientificDomain, {"_id": 1}),
    }


def synthetic_sarses(sessions: int, seed: int) -> tuple[list[dict], dict[int, dt.datetime]]:
    """(SARS documents, recommendation index -> timestamp) of `sessions` generated sessions."""
    dump = catalogue_dump()
    records, payloads = generate_sessions(dump, sessions, seed)
    recs = [RecRecord.from_doc({**record, "_id": i}) for i, record in enumerate(records)]
    actions = [ActionRecord.from_payload(payload, i) for i, payload in enumerate(payloads)]
    accessed = {row["id"]: row["accessed_services"] for row in dump["users"]}
    sarses = build_sarses(recs, Journeys(actions), accessed, Visitors(recs))
    for sars in sarses:
        sars["synthetic"] = True
    return sarses, {rec.id: rec.timestamp for rec in recs}
