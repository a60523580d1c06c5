"""Referential clean-up of a validated dump: ids that point nowhere are dropped and counted."""

from __future__ import annotations

from collections import Counter

# (dump key, field, referenced dump key) for every list reference.
LIST_REFERENCES = [
    ("services", "categories", "categories"),
    ("services", "providers", "providers"),
    ("services", "scientific_domains", "scientific_domains"),
    ("services", "platforms", "platforms"),
    ("services", "target_users", "target_users"),
    ("services", "access_modes", "access_modes"),
    ("services", "access_types", "access_types"),
    ("services", "trls", "trls"),
    ("services", "life_cycle_statuses", "life_cycle_statuses"),
    ("services", "research_steps", "research_steps"),
    ("services", "related_services", "services"),
    ("services", "required_services", "services"),
    ("users", "scientific_domains", "scientific_domains"),
    ("users", "categories", "categories"),
    ("users", "accessed_services", "services"),
    ("projects", "services", "services"),
]
# (dump key, field, referenced dump key) for single references.
SCALAR_REFERENCES = [
    ("services", "resource_organisation", "providers"),
]


def drop_dangling_references(entities: dict[str, list[dict]]) -> dict[str, int]:
    """Remove, in place, references to ids not in the dump; return how many per `kind.field`.

    A project whose owner is not in the dump is dropped whole (counted as `projects.user_id`).
    """
    ids = {key: {item["id"] for item in items} for key, items in entities.items()}
    dropped: Counter[str] = Counter()
    for key, field, target in LIST_REFERENCES:
        known = ids[target]
        for item in entities[key]:
            values = item[field]
            kept = [value for value in values if value in known]
            if len(kept) != len(values):
                dropped[f"{key}.{field}"] += len(values) - len(kept)
                item[field] = kept
    for key, field, target in SCALAR_REFERENCES:
        known = ids[target]
        for item in entities[key]:
            if item[field] is not None and item[field] not in known:
                dropped[f"{key}.{field}"] += 1
                item[field] = None
    users = ids["users"]
    projects = entities["projects"]
    entities["projects"] = [project for project in projects if project["user_id"] in users]
    if len(entities["projects"]) != len(projects):
        dropped["projects.user_id"] += len(projects) - len(entities["projects"])
    return dict(dropped)
