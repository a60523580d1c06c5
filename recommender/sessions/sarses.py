"""SARS (state, action, reward, next state) from recommendations and the journeys after them.

For every recommendation of a visitor (a logged-in user, or an anonymous `unique_id`):
- state: the user (None when anonymous); the services history: the user's accessed services
  minus those ordered from a recommendation panel, then the services the visitor clicked in a
  panel before this recommendation, oldest first (the last HISTORY_STORED are kept); the
  recommendation's candidates and search data.
- action: the recommended services; reward: per service, the symbols of its journeys.
- next state: the state of the visitor's next recommendation. The visitor's last
  recommendation is a terminal transition (`terminal=True`): its next state is its own state
  with the services clicked from it added to the history.

Pure functions over in-memory records (journeys.py): the same code turns stored traffic and
synthetic sessions into SARS.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from recommender.sessions.journeys import Journeys, RecRecord, UserKey, Visitors

HISTORY_STORED = 20


@dataclass
class Timeline:
    """One visitor's panel clicks (time-ordered) and base history."""

    base: list[int] = field(default_factory=list)
    click_times: list = field(default_factory=list)
    click_services: list[int] = field(default_factory=list)

    def history(self, before) -> list[int]:
        clicked = self.click_services[: bisect.bisect_left(self.click_times, before)]
        return (self.base + clicked)[-HISTORY_STORED:]


def timelines(
    journeys: Journeys,
    visitors: Visitors,
    accessed: Mapping[int, Sequence[int]],
    keys: Collection[UserKey],
) -> dict[UserKey, Timeline]:
    """Each visitor's timeline, from one pass over the actions."""
    clicks: dict[UserKey, list[tuple]] = defaultdict(list)
    ordered: dict[UserKey, set[int]] = defaultdict(set)
    for i, action in enumerate(journeys.actions):
        if not action.panel_root:
            continue
        key = visitors.key(action.user, action.unique_id)
        if key not in keys:
            continue
        clicks[key].append((action.timestamp, action.root_service))
        if journeys.ordered_from_panel(i):
            ordered[key].add(action.root_service)
    result = {}
    for key in keys:
        own = sorted(clicks.get(key, ()), key=lambda click: click[0])
        accessed_services = accessed.get(key[1], ()) if key[0] == "user" else ()
        result[key] = Timeline(
            base=[int(s) for s in accessed_services if s not in ordered.get(key, ())],
            click_times=[t for t, _ in own],
            click_services=[int(s) for _, s in own],
        )
    return result


def state(key: UserKey, rec: RecRecord, history: list[int]) -> dict:
    return {
        "user": key[1] if key[0] == "user" else None,
        "services_history": history,
        "candidates": list(rec.candidates),
        "search_data": dict(rec.search_data),
    }


def group_by_visitor(
    recs: Iterable[RecRecord], visitors: Visitors
) -> dict[UserKey, list[RecRecord]]:
    """Each visitor's recommendations in time order (ties by id, for a stable order)."""
    groups: dict[UserKey, list[RecRecord]] = defaultdict(list)
    for rec in recs:
        groups[visitors.key(rec.user, rec.unique_id)].append(rec)
    for group in groups.values():
        group.sort(key=lambda rec: (rec.timestamp, str(rec.id)))
    return groups


def visitor_sarses(
    key: UserKey, recs: Sequence[RecRecord], journeys: Journeys, timeline: Timeline
) -> list[dict]:
    """The SARS of one visitor's recommendations (time-ordered); the last one is terminal."""
    states = [state(key, rec, timeline.history(rec.timestamp)) for rec in recs]
    sarses = []
    for i, rec in enumerate(recs):
        if not rec.services:
            continue
        reward = journeys.rewards(rec)
        terminal = i + 1 == len(recs)
        if terminal:
            clicked = [s for s, symbols in zip(rec.services, reward, strict=True) if symbols]
            history = (states[i]["services_history"] + clicked)[-HISTORY_STORED:]
            next_state = {**states[i], "services_history": history}
        else:
            next_state = states[i + 1]
        sarses.append(
            {
                "state": states[i],
                "action": list(rec.services),
                "reward": reward,
                "next_state": next_state,
                "terminal": terminal,
                "synthetic": False,
                "source_recommendation": rec.id,
            }
        )
    return sarses


def build_sarses(
    recs: Sequence[RecRecord],
    journeys: Journeys,
    accessed: Mapping[int, Sequence[int]],
    visitors: Visitors | None = None,
) -> list[dict]:
    """The SARS of every recommendation in `recs` (all of each visitor's, for terminal flags)."""
    visitors = visitors or Visitors(recs)
    groups = group_by_visitor(recs, visitors)
    lines = timelines(journeys, visitors, accessed, set(groups))
    sarses = []
    for key, group in groups.items():
        sarses.extend(visitor_sarses(key, group, journeys, lines[key]))
    return sarses
