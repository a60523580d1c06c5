"""Synthetic browsing sessions on the Marketplace's services list.

Each session is one view of `/services` showing a recommendation panel (a Recommendation record,
with the logging policy's propensities) and the user actions that followed: a click on a
recommended service, a walk through its pages (each action's `source.visit_id` is the previous
action's `target.visit_id`) and sometimes an order. Who clicks what, and how far a journey goes,
is decided by the synthetic world's hidden interests (`world.py`).
"""

from __future__ import annotations

import datetime as dt

from recommender.synthetic.world import World


def generate_sessions(
    dump: dict, sessions: int, seed: int, start: dt.datetime | None = None
) -> tuple[list[dict], list[dict]]:
    """Recommendations shown and the user actions that followed, over 30 days from `start`.

    Returns (recommendation records with the fields of `Recommendation`, user-action payloads
    in the `POST /user_actions` shape), both in time order. `start` defaults to a fixed date so
    a seed gives the same sessions on every run; a timezone-aware `start` is converted to UTC.
    A session whose visitor has too few services left to fill the panel shows none and is skipped.
    The slates are drawn by the world's logging policy (the interest-overlap rule explored by
    Plackett-Luce) and each record carries its `policy`, `propensities` and `slate_propensity`.
    """
    world = World(dump)
    logged = world.log(world.requests(sessions, seed, start), seed)
    return logged.recommendations, logged.actions
