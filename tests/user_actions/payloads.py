"""User-action bodies shaped like the clients' (Marketplace and others)."""

from __future__ import annotations

import copy
import uuid
from typing import Any

REMOVE = object()  # as a value in `user_action(...)`: drop the key


def user_action(**changes: Any) -> dict:
    """A Marketplace panel click; `changes` set keys (`source__root__type` for nested ones;
    the value REMOVE drops the key)."""
    body: dict[str, Any] = {
        "user_id": 7,
        "unique_id": str(uuid.uuid4()),
        "client_id": "marketplace",
        "timestamp": "2024-02-21T15:19:43.512+0100",
        "source": {
            "visit_id": str(uuid.uuid4()),
            "page_id": "/services",
            "root": {
                "type": "recommendation-panel",
                "panel_id": "v1",
                "resource_type": "service",
                "resource_id": 1234,
            },
        },
        "target": {"visit_id": str(uuid.uuid4()), "page_id": "/services/egi-notebooks"},
        "action": {"type": "button", "text": "Details", "order": False},
    }
    for key, value in changes.items():
        *parents, leaf = key.split("__")
        node = body
        for parent in parents:
            node = node[parent]
        if value is REMOVE:
            node.pop(leaf, None)
        else:
            node[leaf] = copy.deepcopy(value)
    return body
