"""Synthetic browsing sessions on the Marketplace's services list.

Each session is one view of `/services` showing a recommendation panel (a Recommendation record)
and the user actions that followed: a click on a recommended service, a walk through its pages
(each action's `source.visit_id` is the previous action's `target.visit_id`) and sometimes an
order. Services matching the visitor's interests (declared categories and domains, or the
search's filters for anonymous visitors) are shown, clicked, explored and ordered more often.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

from recommender.models.marketplace import RECOMMENDABLE_STATUSES
from recommender.panels import PANEL_K
from recommender.synthetic.sampling import slug, uuids

STREAM = 7  # sessions draw from their own stream: same seed, independent of the catalogue's
DEFAULT_START = dt.datetime(2024, 1, 1)
SPAN = dt.timedelta(days=30)
ANONYMOUS_SHARE = 0.2
ENGINES = (("RL", 0.6), ("NCF", 0.3), ("Random", 0.1))
ANONYMOUS_ENGINES = (("Popularity", 0.8), ("Random", 0.2))
CLICK = (0.05, 0.35)  # click probability of a shown service: (not matching, matching)
# Page flow after a click: from each sub-page of /services/<slug> ("" is the service page
# itself) to the next, with probabilities; "back" returns to /services, "exit" leaves.
FLOW: dict[str, tuple[tuple[str, float], ...]] = {
    "": (("details", 0.25), ("offers", 0.30), ("opinions", 0.08), ("back", 0.07), ("exit", 0.30)),
    "details": (("offers", 0.35), ("opinions", 0.10), ("", 0.15), ("exit", 0.40)),
    "opinions": (("details", 0.25), ("", 0.20), ("exit", 0.55)),
    "offers": (("information", 0.55), ("summary", 0.15), ("", 0.10), ("exit", 0.20)),
    "information": (("configuration", 0.45), ("summary", 0.20), ("exit", 0.35)),
    "configuration": (("summary", 0.60), ("exit", 0.40)),
    "summary": (("order", 0.50), ("exit", 0.50)),
}
LEAVING = {"back", "exit"}
INTERESTED_LEAVING = 0.35  # an interested visitor leaves this much as often
MAX_STEPS = 10
BUTTONS = {
    "": "About",
    "details": "Details",
    "opinions": "Opinions",
    "offers": "Offers",
    "information": "Next",
    "configuration": "Next",
    "summary": "Next",
    "back": "Back to services",
    "order": "Order",
}


@dataclass(frozen=True)
class _Catalogue:
    """Recommendable services as arrays: ids, slugs, popularity and facet incidence."""

    ids: np.ndarray
    slugs: list[str]
    popularity: np.ndarray
    categories: np.ndarray  # (services, categories) bool
    domains: np.ndarray  # (services, domains) bool
    category_index: dict[int, int]
    domain_index: dict[int, int]

    @classmethod
    def from_dump(cls, dump: dict) -> _Catalogue:
        services = [s for s in dump["services"] if s.get("status") in RECOMMENDABLE_STATUSES]
        ids = np.array([s["id"] for s in services], dtype=np.int64)
        position = {sid: i for i, sid in enumerate(ids.tolist())}
        orders = np.zeros(len(ids))
        for user in dump["users"]:
            for sid in user["accessed_services"]:
                if sid in position:
                    orders[position[sid]] += 1
        category_index = {c["id"]: i for i, c in enumerate(dump["categories"])}
        domain_index = {d["id"]: i for i, d in enumerate(dump["scientific_domains"])}
        return cls(
            ids=ids,
            slugs=[slug(s["name"]) for s in services],
            popularity=orders + 1.0,
            categories=_incidence(services, "categories", category_index),
            domains=_incidence(services, "scientific_domains", domain_index),
            category_index=category_index,
            domain_index=domain_index,
        )

    def matching(self, rows: np.ndarray, categories: list[int], domains: list[int]) -> np.ndarray:
        """Whether each service at `rows` shares a category or a domain with the given ones."""
        cat = [self.category_index[c] for c in categories if c in self.category_index]
        dom = [self.domain_index[d] for d in domains if d in self.domain_index]
        return self.categories[np.ix_(rows, cat)].any(axis=1) | self.domains[np.ix_(rows, dom)].any(
            axis=1
        )


def _incidence(services: list[dict], field: str, index: dict[int, int]) -> np.ndarray:
    matrix = np.zeros((len(services), len(index)), dtype=bool)
    for row, service in enumerate(services):
        matrix[row, [index[v] for v in service[field] if v in index]] = True
    return matrix


def _timestamp(moment: dt.datetime) -> str:
    """The Marketplace's format: milliseconds and an offset without a colon."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"


def _choice(rng: np.random.Generator, options: tuple[tuple[str, float], ...]) -> str:
    names = [name for name, _ in options]
    weights = np.array([weight for _, weight in options])
    return names[int(rng.choice(len(names), p=weights / weights.sum()))]


class _Sessions:
    """Builds sessions one by one; holds the draws and the records made so far."""

    def __init__(self, dump: dict, rng: np.random.Generator):
        self.rng = rng
        self.catalogue = _Catalogue.from_dump(dump)
        self.users = dump["users"]
        self.browsers: dict[int, str] = {}
        self.recommendations: list[dict] = []
        self.actions: list[dict] = []

    def _browser(self, user: dict | None) -> str:
        """A logged-in user keeps one browser id (`unique_id`); each anonymous visit a new one."""
        if user is None:
            return uuids(self.rng, 1)[0]
        if user["id"] not in self.browsers:
            self.browsers[user["id"]] = uuids(self.rng, 1)[0]
        return self.browsers[user["id"]]

    def _search(self, user: dict | None) -> dict:
        """The list's filters: often none; else a category of interest, sometimes a domain."""
        roll = self.rng.random()
        if roll < 0.45:
            return {}
        cats = (
            user["categories"]
            if user and user["categories"]
            else list(self.catalogue.category_index)
        )
        if not cats:  # a catalogue without categories: nothing to filter on
            return {}
        search: dict = {"categories": [int(self.rng.choice(cats))], "sort": "_score"}
        doms = (
            user["scientific_domains"]
            if user and user["scientific_domains"]
            else list(self.catalogue.domain_index)
        )
        if roll > 0.85 and doms:
            search["scientific_domains"] = [int(self.rng.choice(doms))]
        return search

    def _candidates(self, search: dict, excluded: set[int], k: int) -> tuple[np.ndarray, dict]:
        """Rows of the search's results (at most 200), and the search that gave them: the
        unfiltered list (and no filters) when too few services match the filters."""
        rows = np.flatnonzero(~np.isin(self.catalogue.ids, list(excluded)))
        if search:
            filtered = rows[self.catalogue.matching(rows, search["categories"], [])]
            if len(filtered) >= 2 * k:
                rows = filtered
            else:
                search = {}
        size = min(len(rows), int(self.rng.integers(20, 201)))
        return (self.rng.choice(rows, size=size, replace=False) if size else rows), search

    def session(self, moment: dt.datetime) -> None:
        rng, catalogue = self.rng, self.catalogue
        user = None
        if self.users and rng.random() >= ANONYMOUS_SHARE:
            user = self.users[int(rng.integers(len(self.users)))]
        panel = "v1" if rng.random() < 0.75 else "v2"
        k = PANEL_K[panel]
        excluded = set(user["accessed_services"]) if user else set()
        rows, search = self._candidates(self._search(user), excluded, k)
        if len(rows) < k:
            return
        if user:
            match = catalogue.matching(rows, user["categories"], user["scientific_domains"])
        else:
            match = catalogue.matching(rows, search.get("categories", []), [])
        weights = catalogue.popularity[rows] * (1 + 4 * match)
        shown = rng.choice(len(rows), size=k, replace=False, p=weights / weights.sum())
        scores = weights[shown] / weights[shown].sum()
        ranked = shown[np.argsort(-scores, kind="stable")]
        visit_id = uuids(rng, 1)[0]
        unique_id = self._browser(user)
        self.recommendations.append(
            {
                "user": user["id"] if user else None,
                "unique_id": unique_id,
                "client_id": "marketplace",
                "timestamp": moment,
                "visit_id": visit_id,
                "page_id": "/services",
                "panel_id": panel,
                "engine_version": _choice(rng, ENGINES if user else ANONYMOUS_ENGINES),
                "services": catalogue.ids[rows[ranked]].tolist(),
                "scores": np.sort(scores)[::-1].round(4).tolist(),
                "candidates": catalogue.ids[rows].tolist(),
                "search_data": search,
            }
        )
        for position in ranked.tolist():
            interested = bool(match[position])
            if rng.random() < CLICK[interested]:
                self._journey(user, unique_id, visit_id, panel, rows[position], interested, moment)

    def _journey(
        self,
        user: dict | None,
        unique_id: str,
        visit_id: str,
        panel: str,
        row: int,
        interested: bool,
        moment: dt.datetime,
    ) -> None:
        """A click on a recommended service, then a walk through its pages."""
        service_id = int(self.catalogue.ids[row])
        page = f"/services/{self.catalogue.slugs[row]}"
        root = {
            "type": "recommendation_panel",
            "panel_id": panel,
            "resource_type": "service",
            "resource_id": service_id,
        }
        source = (visit_id, "/services")
        step = ""
        for _ in range(MAX_STEPS):
            moment += dt.timedelta(milliseconds=round(1000 + self.rng.exponential(25_000)))
            target_page = {"": page, "back": "/services", "order": "/projects"}.get(
                step, f"{page}/{step}"
            )
            target = (uuids(self.rng, 1)[0], target_page)
            text = BUTTONS[step] if source[1] != "/services" else "Go to service"
            self.actions.append(
                _action(user, unique_id, moment, source, root, target, text, step == "order")
            )
            if step in {"back", "order"}:
                return
            step = self._next(step, interested)
            if step == "exit":
                return
            source = target

    def _next(self, step: str, interested: bool) -> str:
        options = FLOW[step]
        if interested:
            options = tuple(
                (name, w * INTERESTED_LEAVING if name in LEAVING else w) for name, w in options
            )
        return _choice(self.rng, options)


def _action(
    user: dict | None,
    unique_id: str,
    moment: dt.datetime,
    source: tuple[str, str],
    root: dict,
    target: tuple[str, str],
    text: str,
    order: bool,
) -> dict:
    """A `POST /user_actions` payload; `source` and `target` are (visit id, page id)."""
    payload = {
        "unique_id": unique_id,
        "timestamp": _timestamp(moment),
        "client_id": "marketplace",
        "source": {"visit_id": source[0], "page_id": source[1], "root": root},
        "target": {"visit_id": target[0], "page_id": target[1]},
        "action": {"type": "button", "text": text, "order": order},
    }
    if user is not None:
        payload["user_id"] = user["id"]
    return payload


def generate_sessions(
    dump: dict, sessions: int, seed: int, start: dt.datetime | None = None
) -> tuple[list[dict], list[dict]]:
    """Recommendations shown and the user actions that followed, over 30 days from `start`.

    Returns (recommendation records with the fields of `Recommendation`, user-action payloads
    in the `POST /user_actions` shape), both in time order. `start` defaults to a fixed date so
    a seed gives the same sessions on every run; a timezone-aware `start` is converted to UTC.
    A session whose visitor has too few services left to fill the panel shows none and is skipped.
    """
    rng = np.random.default_rng([seed, STREAM])
    start = start or DEFAULT_START
    if start.tzinfo is not None:
        start = start.astimezone(dt.UTC).replace(tzinfo=None)
    start = start.replace(microsecond=start.microsecond // 1000 * 1000)
    # Whole milliseconds: what MongoDB keeps and the timestamps' text shows.
    offsets = np.sort(rng.integers(0, SPAN // dt.timedelta(milliseconds=1), sessions))
    builder = _Sessions(dump, rng)
    for offset in offsets.tolist():
        builder.session(start + dt.timedelta(milliseconds=offset))
    builder.actions.sort(key=lambda action: action["timestamp"])
    return builder.recommendations, builder.actions
