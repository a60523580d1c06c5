"""The Marketplace's recommendation panels and how many services each shows (K)."""

from __future__ import annotations

# Panel id -> K. `v1` is the original three-service panel, `v2` the two-service one.
PANEL_K: dict[str, int] = {"v1": 3, "v2": 2}
PANEL_OF_K: dict[int, str] = {k: panel for panel, k in PANEL_K.items()}
# What clients also send for `v1`: `service` (the service page) and an empty id.
PANEL_ALIASES: dict[str, str] = {"": "v1", "service": "v1"}

# The root type of a user action that started in a panel, as stored (ingestion and a migration
# normalise to it), and every spelling clients send: the Marketplace writes
# `recommendation-panel`, older clients `recommendation_panel`.
PANEL_ROOT = "recommendation_panel"
PANEL_ROOT_SPELLINGS: frozenset[str] = frozenset({"recommendation-panel", PANEL_ROOT})
