"""User journeys in memory: recommendations, the actions that followed them, collapsed rewards.

An action's children are the actions whose `source.visit_id` is its `target.visit_id` (the
visitor went on from the page it led to). A journey starts at a *root* action: a click in a
recommendation panel (`source.root.type` is the panel, `source.root.service` the service) made
on the page the recommendation was shown on (`source.visit_id` = the recommendation's
`visit_id`). Collapsing a journey collects the symbolic reward of every action in it, depth
first, stopping a branch at an order or at a return to the service list; each action is visited
at most once, so cycles in the visit graph cannot hang it.

Everything here works on plain records built from projected documents: the callers read each
collection once and nothing here queries the database.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from recommender.panels import PANEL_K, PANEL_ROOT_SPELLINGS
from recommender.schemas.user_action import validate_user_action
from recommender.sessions.rewards import LIST_PAGE, ORDER, abstract_page, symbol

UserKey = tuple[str, Any]  # ("user", id) or ("anonymous", unique_id)

# Projections of what the journeys need, for the callers' single reads.
ACTION_FIELDS = {
    "user": 1,
    "unique_id": 1,
    "timestamp": 1,
    "source.visit_id": 1,
    "source.page_id": 1,
    "source.root.type": 1,
    "source.root.panel_id": 1,
    "source.root.service": 1,
    "target.visit_id": 1,
    "target.page_id": 1,
    "action.order": 1,
    "processed": 1,
}
RECOMMENDATION_FIELDS = {
    "user": 1,
    "unique_id": 1,
    "visit_id": 1,
    "timestamp": 1,
    "panel_id": 1,
    "services": 1,
    "processed": 1,
}


@dataclass(slots=True)
class ActionRecord:
    id: Any
    user: int | None
    unique_id: str | None
    timestamp: dt.datetime
    source_visit: str | None
    source_page: str | None
    root_type: str | None
    root_panel: str | None
    root_service: int | None
    target_visit: str | None
    target_page: str | None
    order: bool
    processed: bool = False

    @property
    def panel_root(self) -> bool:
        return self.root_type in PANEL_ROOT_SPELLINGS and self.root_service is not None

    @classmethod
    def from_doc(cls, doc: Mapping) -> ActionRecord:
        source, target = doc.get("source") or {}, doc.get("target") or {}
        root = source.get("root") or {}
        return cls(
            id=doc.get("_id"),
            user=doc.get("user"),
            unique_id=doc.get("unique_id"),
            timestamp=doc.get("timestamp") or dt.datetime.min,
            source_visit=source.get("visit_id"),
            source_page=source.get("page_id"),
            root_type=root.get("type"),
            root_panel=root.get("panel_id"),
            root_service=root.get("service"),
            target_visit=target.get("visit_id"),
            target_page=target.get("page_id"),
            order=bool((doc.get("action") or {}).get("order")),
            processed=bool(doc.get("processed")),
        )

    @classmethod
    def from_payload(cls, payload: Mapping, id: Any) -> ActionRecord:
        """A `POST /user_actions` body, checked as the endpoint checks it, as it would be
        stored (without the cost of building the document)."""
        action = validate_user_action(payload)
        root = action.source.root
        service = root and root.resource_type == "service" and isinstance(root.resource_id, int)
        return cls(
            id=id,
            user=action.user_id,
            unique_id=action.unique_id,
            timestamp=action.timestamp,
            source_visit=action.source.visit_id,
            source_page=action.source.page_id,
            root_type=root.type if root else None,
            root_panel=root.panel_id if root else None,
            root_service=root.resource_id if service else None,
            target_visit=action.target.visit_id,
            target_page=action.target.page_id,
            order=action.action.order,
        )


@dataclass(slots=True)
class RecRecord:
    id: Any
    user: int | None
    unique_id: str | None
    visit_id: str | None
    timestamp: dt.datetime
    panel_id: str | None
    services: list[int]
    processed: bool = False
    # Read only for the recommendations whose SARS are (re)built.
    candidates: list[int] = field(default_factory=list)
    search_data: dict = field(default_factory=dict)

    @classmethod
    def from_doc(cls, doc: Mapping) -> RecRecord:
        return cls(
            id=doc.get("_id"),
            user=doc.get("user"),
            unique_id=doc.get("unique_id"),
            visit_id=doc.get("visit_id"),
            timestamp=doc.get("timestamp") or dt.datetime.min,
            panel_id=doc.get("panel_id"),
            services=list(doc.get("services") or ()),
            processed=bool(doc.get("processed")),
            candidates=list(doc.get("candidates") or ()),
            search_data=dict(doc.get("search_data") or {}),
        )


class Visitors:
    """Who is who: logged-in users by id; anonymous visitors by `unique_id`.

    An action or recommendation without a user but with the `unique_id` a logged-in user's
    recommendation carried is that user's (the Marketplace may omit the user on some calls).
    """

    def __init__(self, recs: Iterable[RecRecord]):
        self.users_by_unique_id: dict[str, int] = {
            rec.unique_id: rec.user for rec in recs if rec.user is not None and rec.unique_id
        }

    def key(self, user: int | None, unique_id: str | None) -> UserKey:
        if user is not None:
            return ("user", user)
        known = self.users_by_unique_id.get(unique_id or "")
        return ("user", known) if known is not None else ("anonymous", unique_id)


class Journeys:
    """The actions indexed for journey walks (children by visit, panel roots by page)."""

    def __init__(self, actions: Sequence[ActionRecord]):
        self.actions = actions
        self.children: dict[str, list[int]] = defaultdict(list)
        self.roots: dict[str, list[int]] = defaultdict(list)
        self.by_target: dict[str, list[int]] = defaultdict(list)
        for i, action in enumerate(actions):
            if action.source_visit:
                self.children[action.source_visit].append(i)
                if action.panel_root:
                    self.roots[action.source_visit].append(i)
            if action.target_visit:
                self.by_target[action.target_visit].append(i)
        self._collapsed: dict[int, list[str]] = {}

    def collapse(self, root: int) -> list[str]:
        """The symbols of the journey starting at action `root`, depth first, each once."""
        if root in self._collapsed:
            return self._collapsed[root]
        symbols: list[str] = []
        seen = {root}
        stack = [root]
        while stack:
            action = self.actions[stack.pop()]
            symbols.append(symbol(action.source_page, action.target_page, action.order))
            if action.order or abstract_page(action.target_page) == LIST_PAGE:
                continue  # an order ends the journey; so does going back to the list
            for child in reversed(self.children.get(action.target_visit or "", ())):
                if child not in seen:
                    seen.add(child)
                    stack.append(child)
        self._collapsed[root] = symbols
        return symbols

    def panel_roots(self, rec: RecRecord) -> list[int]:
        """The panel clicks made on the page `rec` was shown on, on services it recommended."""
        if not rec.visit_id:
            return []
        shown = set(rec.services)
        return [
            i
            for i in self.roots.get(rec.visit_id, ())
            if self.actions[i].root_service in shown
            and not _other_panel(self.actions[i].root_panel, rec.panel_id)
        ]

    def rewards(self, rec: RecRecord) -> list[list[str]]:
        """Per recommended service, the distinct symbols of its journeys (empty: not clicked)."""
        per_service: dict[int, dict[str, None]] = {s: {} for s in rec.services}
        for i in self.panel_roots(rec):
            per_service[self.actions[i].root_service].update(dict.fromkeys(self.collapse(i)))
        return [list(per_service[s]) for s in rec.services]

    def ordered_from_panel(self, root: int) -> bool:
        return ORDER in self.collapse(root)

    def origin_visits(self, action: ActionRecord, limit: int = 10_000) -> set[str]:
        """Every visit id this action's journey passed through on its way back to its start."""
        seen: set[str] = set()
        todo = [action.source_visit] if action.source_visit else []
        while todo and len(seen) < limit:
            visit = todo.pop()
            if visit in seen:
                continue
            seen.add(visit)
            todo.extend(
                self.actions[i].source_visit
                for i in self.by_target.get(visit, ())
                if self.actions[i].source_visit
            )
        return seen


def _other_panel(action_panel: str | None, rec_panel: str | None) -> bool:
    """True when both name a known panel and they differ (a click in the page's other panel)."""
    return action_panel in PANEL_K and rec_panel in PANEL_K and action_panel != rec_panel
