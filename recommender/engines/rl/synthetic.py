"""SARS from synthetic sessions, for when the stored traffic is too thin to learn from.

The session generator (recommender.synthetic) runs on the live catalogue (the users and
services the pipeline read once, projected), and its recommendations and user actions go
through exactly the journey and SARS code real traffic goes through (recommender.sessions), in
memory: nothing synthetic is stored.
"""

from __future__ import annotations

from collections.abc import Mapping

from recommender.sessions.journeys import ActionRecord, Journeys, RecRecord, Visitors
from recommender.sessions.sarses import build_sarses
from recommender.synthetic import generate_sessions


def catalogue_dump(users: Mapping[int, Mapping], services: Mapping[int, Mapping]) -> dict:
    """The parts of a dump the session generator reads, from the stored catalogue's documents
    (id -> projected document)."""

    def rows(docs: Mapping[int, Mapping], fields: tuple[str, ...]) -> list[dict]:
        return [{"id": i, **{f: doc.get(f) or [] for f in fields}} for i, doc in docs.items()]

    user_rows = rows(users, ("categories", "scientific_domains", "accessed_services"))
    service_rows = rows(services, ("categories", "scientific_domains"))
    for row in service_rows:
        doc = services[row["id"]]
        row["name"] = doc.get("name") or f"service {row['id']}"
        row["status"] = doc.get("status")
    # The vocabularies as the services and users use them (a catalogue loaded without its
    # category documents still has interests to match).
    return {
        "services": service_rows,
        "users": user_rows,
        **{
            field: [
                {"id": i} for i in sorted({v for r in service_rows + user_rows for v in r[field]})
            ]
            for field in ("categories", "scientific_domains")
        },
    }


def synthetic_sarses(
    sessions: int, seed: int, users: Mapping[int, Mapping], services: Mapping[int, Mapping]
) -> tuple[list[dict], dict[int, dict]]:
    """(SARS documents, recommendation index -> its record: timestamp, propensities) of
    `sessions` generated sessions."""
    dump = catalogue_dump(users, services)
    records, payloads = generate_sessions(dump, sessions, seed)
    recs = [RecRecord.from_doc({**record, "_id": i}) for i, record in enumerate(records)]
    actions = [ActionRecord.from_payload(payload, i) for i, payload in enumerate(payloads)]
    accessed = {row["id"]: row["accessed_services"] for row in dump["users"]}
    sarses = build_sarses(recs, Journeys(actions), accessed, Visitors(recs))
    for sars in sarses:
        sars["synthetic"] = True
    return sarses, dict(enumerate(records))
