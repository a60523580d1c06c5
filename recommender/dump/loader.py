"""Atomic replacement of the catalogue from a validated dump.

Each kind is written in bulk to a staging collection (with its indexes), then every staging
collection is renamed over the live one, then the catalogue stamp is bumped. Readers that cache
the catalogue (serving) switch on the stamp, so they never see a half-loaded catalogue; a failure
before the renames leaves the live catalogue untouched.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from mongoengine import Document
from pymongo.database import Database

from recommender.models.marketplace import DUMP_ENTITIES
from recommender.store import get_db, stamps

logger = logging.getLogger(__name__)
STAGING_SUFFIX = "__staging"
BATCH = 10_000


def to_documents(items: list[dict]) -> list[dict]:
    return [{"_id": item["id"], **{k: v for k, v in item.items() if k != "id"}} for item in items]


def _create_indexes(document: type[Document], collection) -> None:
    for spec in document._meta.get("index_specs", []):
        options = {k: v for k, v in spec.items() if k != "fields"}
        collection.create_index(spec["fields"], **options)


def _write_staging(db: Database, document: type[Document], items: list[dict]) -> str:
    name = document._get_collection_name() + STAGING_SUFFIX
    db.drop_collection(name)
    # Created explicitly: an empty kind must still replace its live collection.
    staging = db.create_collection(name)
    _create_indexes(document, staging)
    rows = to_documents(items)
    for start in range(0, len(rows), BATCH):
        staging.insert_many(rows[start : start + BATCH], ordered=False)
    return name


def load_catalogue(
    entities: dict[str, list[dict]], progress: Callable[[str], None] | None = None
) -> dict[str, int]:
    """Replace the live catalogue with `entities` (validated, references cleaned)."""
    db = get_db()
    staged: list[tuple[str, type[Document]]] = []
    try:
        for key, document in DUMP_ENTITIES.items():
            if progress:
                progress(f"staging {key}")
            staged.append((_write_staging(db, document, entities[key]), document))
    except Exception:
        for name, _ in staged:
            db.drop_collection(name)
        raise
    for name, document in staged:
        db[name].rename(document._get_collection_name(), dropTarget=True)
    for _, document in staged:
        document._collection = None  # mongoengine caches the collection handle
    version = stamps.bump(stamps.CATALOGUE)
    logger.info("Catalogue version %s is live", version)
    return {key: len(entities[key]) for key in DUMP_ENTITIES}


def drop_catalogue() -> None:
    """Delete every Marketplace document (the 13 dump collections), in bulk."""
    db = get_db()
    for document in DUMP_ENTITIES.values():
        db.drop_collection(document._get_collection_name())
        document._collection = None
    stamps.bump(stamps.CATALOGUE)
