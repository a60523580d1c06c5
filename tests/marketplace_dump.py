"""A small, hand-written dump shaped like a real Marketplace one: all 13 keys, null optional
texts, id gaps, services of every status, a few references to ids that are not in the dump."""

from __future__ import annotations

import copy

STATUSES = ["published", "unverified", "draft", "errored", "deleted"]


def _described(ids: list[int], prefix: str) -> list[dict]:
    return [
        {"id": i, "name": f"{prefix} {i}", "description": None if i % 2 else f"About {prefix} {i}"}
        for i in ids
    ]


def service(service_id: int, status: str = "published", **overrides) -> dict:
    base = {
        "id": service_id,
        "pid": None if service_id % 3 == 0 else f"provider.service{service_id}",
        "name": f"Service {service_id}",
        "description": None if service_id % 9 == 0 else f"Does thing {service_id}",
        "tagline": None if service_id % 5 == 0 else "compute, storage",
        "countries": ["PL", "DE"],
        "order_type": "open_access",
        "rating": "4.5",
        "categories": [10 + service_id % 3],
        "providers": [100, 101],
        "resource_organisation": 100,
        "scientific_domains": [20 + service_id % 2],
        "platforms": [30],
        "target_users": [40],
        "related_services": [],
        "required_services": [],
        "access_modes": [50],
        "access_types": [60],
        "trls": [70],
        "life_cycle_statuses": [80],
        "research_steps": [90],
        "horizontal": service_id % 7 == 0,
        "status": status,
        "unknown_extra_key": "kept out",
    }
    base.update(overrides)
    return base


def marketplace_dump(n_services: int = 20, n_users: int = 15) -> dict:
    """Services with ids 1, 3, 5, ... (gaps) cycling through every status; users with orders."""
    service_ids = [2 * i + 1 for i in range(n_services)]
    services = [service(sid, STATUSES[i % len(STATUSES)]) for i, sid in enumerate(service_ids)]
    services[0]["related_services"] = [service_ids[1], 9999]  # 9999: dangling
    services[1]["required_services"] = [service_ids[0]]
    services[2]["categories"] = [10, 777]  # 777: dangling
    services[3]["resource_organisation"] = 555  # dangling provider
    users = [
        {
            "id": 1000 + 7 * u,
            "aai_uid": f"user{u}@egi.eu",
            "scientific_domains": [20 + u % 2],
            "categories": [10 + u % 3],
            "accessed_services": [service_ids[(u + j) % n_services] for j in range(1 + u % 4)],
        }
        for u in range(n_users)
    ]
    users[0]["accessed_services"].append(8888)  # dangling
    projects = [
        {"id": 5000 + u["id"], "user_id": u["id"], "services": u["accessed_services"][:2]}
        for u in users[:5]
    ]
    projects.append({"id": 7777, "user_id": 424242, "services": []})  # unknown owner
    return copy.deepcopy(
        {
            "services": services,
            "users": users,
            "projects": projects,
            "categories": [{"id": i, "name": f"Category {i}"} for i in (10, 11, 12)],
            "providers": [
                {"id": 100, "pid": "prov.a", "name": "Provider A"},
                {"id": 101, "pid": None, "name": "Provider B"},
            ],
            "scientific_domains": [{"id": i, "name": f"Domain {i}"} for i in (20, 21)],
            "platforms": [{"id": 30, "name": "EOSC"}],
            "target_users": _described([40], "Target user"),
            "access_modes": _described([50], "Access mode"),
            "access_types": _described([60], "Access type"),
            "trls": _described([70], "TRL"),
            "life_cycle_statuses": _described([80], "Life cycle"),
            "research_steps": _described([90], "Research step"),
        }
    )
