"""The synthetic world: visitors with hidden interests react to recommendation panels, so that
sessions can be logged by a known stochastic policy and any policy's true value computed.

Hidden parameters (never in the dump, the logs or what an engine is given):

- a latent interest vector per service: the sum of vectors attached to its declared categories
  and scientific domains, plus a service-specific part of the same size that no declared field
  shows;
- a latent interest vector per user: their declared interests, the services they ordered (the
  mean of those services' vectors) and a personal part; an anonymous visitor's comes from the
  search filters, or is zero;
- a freshness flag per service (recently added): visitors click fresh services more, though
  nobody has ordered them much yet;
- a position-bias curve.

A shown service at position j is clicked with probability
bias[j] * sigmoid(BASE + AFFINITY a + POPULARITY p + FRESHNESS f), independently of the other
positions, where a is the visitor's and the service's latent affinity (cosine), p its popularity
in [0, 1) (log-scaled, from how many users accessed it) and f its freshness. A click starts a
journey through the service's pages (a Markov chain, `FLOW`) in which a visitor leaves less the
higher a is. A shown service's reward is the best symbol of its journey (order 1, interest 0.7,
mild interest 0.3: recommender.sessions.rewards), 0 when not clicked; a slate's is the sum.

Each ingredient pulls a different way: declared interests are only part of the affinity,
popularity helps but fresh services are unpopular, and position scales everything, so neither
the interest-overlap rule, nor popularity, nor any other single hand rule is optimal.

`expected_reward` is exact: the click probabilities are closed-form, and a click's expected value
is the expected best symbol of the journey chain, computed by dynamic programming over (page,
best symbol so far, steps) on a fine grid of affinities and interpolated linearly (error below
1e-6; tests/synthetic check it against the direct computation and against Monte-Carlo sessions).

Hidden vectors are drawn from hashes of ids (and `latent_seed`), not from a random stream: the
same dump gives the same world whatever order its lists are in, and the RL pipeline's catalogue
dump (ids, names, statuses, categories, domains and orders only) gives the same world as the
generator's full dump.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

import numpy as np
from scipy import sparse

from recommender.evaluation.exploration import Exploration, choose
from recommender.models.marketplace import RECOMMENDABLE_STATUSES
from recommender.panels import PANEL_K
from recommender.synthetic.sampling import slug, uuids

# Random streams, so that the same seed gives independent requests and outcomes.
REQUEST_STREAM = 7
OUTCOME_STREAM = 8
DEFAULT_START = dt.datetime(2024, 1, 1)
SPAN = dt.timedelta(days=30)
ANONYMOUS_SHARE = 0.2
V1_SHARE = 0.75
CANDIDATES = (20, 40)  # a request's candidates: a uniform count in this range (inclusive)

LATENT_DIM = 16
DECLARED_WEIGHT = 1.0  # a service's vector: its declared facets' part ...
SERVICE_NOISE = 0.9  # ... and its own hidden part
USER_DECLARED = 0.6  # a user's vector: declared interests, orders and a personal part
USER_HISTORY = 1.0
USER_NOISE = 0.7
FRESH_SHARE = 0.15
BASE = -3.2
AFFINITY = 4.0
POPULARITY = 1.2
FRESHNESS = 1.0
POSITION_BIAS = (1.0, 0.7, 0.5)
# A visitor of affinity a leaves a service's pages with 1 - LEAVE_DROP * clip(a, 0, 1) times the
# base probability of leaving.
LEAVE_DROP = 0.7

# The logging policy: the interest-overlap rule explored by Plackett-Luce over every candidate
# (pool covers CANDIDATES), so that every candidate has a positive probability at every
# position and any target policy is supported.
LOGGING_ENGINE = "InterestRule"
LOGGING = Exploration("plackett_luce", temperature=1.0, pool=CANDIDATES[1])

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
LEAVING = frozenset({"back", "exit"})
ENDING = frozenset({"back", "order"})  # recorded, then the journey ends
MAX_STEPS = 10  # actions per journey, the click included
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
# The value (recommender.sessions.rewards: the transition table's symbol) of each action of a
# journey: the click from the list, then (page, next page); pairs not listed are worth 0.
MILD, INTEREST, ORDER = 0.3, 0.7, 1.0
CLICK_VALUE = MILD
STEP_VALUES: dict[tuple[str, str], float] = {
    ("", "details"): MILD,
    ("", "offers"): INTEREST,
    ("", "opinions"): MILD,
    ("details", "offers"): INTEREST,
    ("details", "opinions"): MILD,
    ("opinions", "details"): MILD,
    ("offers", "information"): INTEREST,
    ("offers", "summary"): INTEREST,
    ("information", "configuration"): INTEREST,
    ("information", "summary"): INTEREST,
    ("configuration", "summary"): INTEREST,
    ("summary", "order"): ORDER,
}
VALUE_LEVELS = (0.0, MILD, INTEREST, ORDER)
AFFINITY_GRID = 4097  # points of the journey-value table over affinities in [0, 1]


@dataclass(frozen=True)
class Request:
    """One view of the services list with a recommendation panel, before anything is shown."""

    moment: dt.datetime
    user: int | None  # the visitor's row in `World.users`; None: anonymous
    unique_id: str
    visit_id: str
    panel: str
    search: dict
    rows: np.ndarray  # the candidates' rows in the world's service arrays
    candidates: np.ndarray  # their service ids (int64), in the list's order

    @property
    def k(self) -> int:
        return min(PANEL_K[self.panel], len(self.rows))


@dataclass(frozen=True)
class Logged:
    """Sessions logged by a policy: the recommendation records and user-action payloads (the
    shapes `generate_sessions` returns), and per record its request and realised reward."""

    recommendations: list[dict]
    actions: list[dict]
    requests: list[Request]
    # [records, 3]: the realised value of the service shown at each position (nan: no position)
    position_rewards: np.ndarray

    @property
    def rewards(self) -> np.ndarray:
        """Per record: the realised slate reward, the sum over its positions."""
        return np.nansum(self.position_rewards, axis=1)


class World:
    """The hidden side of a synthetic Marketplace built on a dump (see the module doc)."""

    def __init__(self, dump: dict, latent_seed: int = 0):
        self.dump = dump
        self.latent_seed = latent_seed
        services = [s for s in dump["services"] if s.get("status") in RECOMMENDABLE_STATUSES]
        self.ids = np.array([s["id"] for s in services], dtype=np.int64)
        self.slugs = [slug(s.get("name") or f"service {s['id']}") for s in services]
        self._row = {sid: i for i, sid in enumerate(self.ids.tolist())}
        self.users: list[dict] = list(dump["users"])
        self.popularity = np.zeros(len(self.ids))
        for user in self.users:
            rows = self.rows(user["accessed_services"])
            self.popularity[rows] += 1
        self.columns = _facet_columns(services + self.users)
        # Dense for services (a request gathers rows of it); sparse for users, who can be many.
        self.service_facets = _incidence(services, self.columns).toarray()
        self.user_facets = _incidence(self.users, self.columns)
        vectors = _hashed_normal(self.columns.keys, latent_seed, salt=1)
        declared = _unit(self.service_facets @ vectors)
        noise = _unit(_hashed_normal(self.ids, latent_seed, salt=2))
        self.service_latent = _unit(DECLARED_WEIGHT * declared + SERVICE_NOISE * noise)
        self.fresh = _hashed_uniform(self.ids, latent_seed, salt=3) < FRESH_SHARE
        self.popular = np.log1p(self.popularity) / (np.log1p(self.popularity.max(initial=0)) + 1)
        self.facet_vectors = vectors
        self.user_latent = self._user_latent()

    def rows(self, service_ids: Sequence[int]) -> np.ndarray:
        """Rows of the recommendable services among `service_ids` (others are dropped)."""
        return np.array([self._row[s] for s in service_ids if s in self._row], dtype=np.int64)

    def _user_latent(self) -> np.ndarray:
        declared = _unit(self.user_facets @ self.facet_vectors)
        history = np.zeros((len(self.users), LATENT_DIM))
        for i, user in enumerate(self.users):
            rows = self.rows(user["accessed_services"])
            if len(rows):
                history[i] = self.service_latent[rows].mean(axis=0)
        ids = np.array([u["id"] for u in self.users], dtype=np.int64)
        noise = _unit(_hashed_normal(ids, self.latent_seed, salt=4))
        return _unit(USER_DECLARED * declared + USER_HISTORY * _unit(history) + USER_NOISE * noise)

    # --- the visitor's side ---------------------------------------------------------------

    def visitor_latent(self, request: Request) -> np.ndarray:
        """The visitor's hidden interest vector (anonymous: their search filters', or 0)."""
        if request.user is not None:
            return self.user_latent[request.user]
        wanted = self.search_facets(request.search)
        return _unit(wanted @ self.facet_vectors)

    def search_facets(self, search: dict) -> np.ndarray:
        """A 0/1 row over the facet columns: the search's category and domain filters."""
        row = np.zeros(len(self.columns.keys))
        for field in ("categories", "scientific_domains"):
            for value in search.get(field, []):
                column = self.columns.index.get((field, value))
                if column is not None:
                    row[column] = 1.0
        return row

    def affinity(self, request: Request) -> np.ndarray:
        """Per candidate: the visitor's latent affinity with it, in [-1, 1]."""
        return self.service_latent[request.rows] @ self.visitor_latent(request)

    def attraction(self, request: Request) -> np.ndarray:
        """Per candidate: the click probability at the first position."""
        rows = request.rows
        logit = (
            BASE
            + AFFINITY * self.affinity(request)
            + POPULARITY * self.popular[rows]
            + FRESHNESS * self.fresh[rows]
        )
        return 1.0 / (1.0 + np.exp(-logit))

    def click_probabilities(self, request: Request) -> np.ndarray:
        """[candidates, K]: P(the visitor clicks candidate c when it is shown at position j)."""
        return self.attraction(request)[:, None] * np.array(POSITION_BIAS[: request.k])[None, :]

    def click_values(self, request: Request) -> np.ndarray:
        """Per candidate: the expected value of its journey once clicked."""
        return journey_value(self.affinity(request))

    def reward_matrix(self, request: Request) -> np.ndarray:
        """[candidates, K]: E[r_j | candidate c shown at position j] (positions independent)."""
        return self.click_probabilities(request) * self.click_values(request)[:, None]

    def expected_reward(
        self, requests: Sequence[Request], slates: Sequence[Sequence[int]]
    ) -> np.ndarray:
        """Per request, the true E[sum_j r_j] of showing `slates[i]` (service ids, in shown
        order, at most K, all candidates of the request). For evaluation only."""
        if len(requests) != len(slates):
            raise ValueError(f"{len(requests)} requests but {len(slates)} slates")
        values = np.zeros(len(requests))
        for i, (request, slate) in enumerate(zip(requests, slates, strict=True)):
            positions = self.positions(request, slate)
            values[i] = self.reward_matrix(request)[positions, np.arange(len(positions))].sum()
        return values

    def positions(self, request: Request, slate: Sequence[int]) -> np.ndarray:
        """Indices into `request.candidates` of a slate's service ids."""
        slate = list(slate)
        if len(slate) > request.k or len(set(slate)) != len(slate):
            raise ValueError(f"a slate holds at most {request.k} distinct services: {slate}")
        where = {sid: i for i, sid in enumerate(request.candidates.tolist())}
        missing = [sid for sid in slate if sid not in where]
        if missing:
            raise ValueError(f"services {missing} are not candidates of the request")
        return np.array([where[sid] for sid in slate], dtype=np.int64)

    def best_slate(self, request: Request) -> np.ndarray:
        """The oracle's slate (service ids): with independent positions and a decreasing
        position bias, the candidates of highest expected value, best first."""
        value = self.attraction(request) * self.click_values(request)
        return request.candidates[np.argsort(-value, kind="stable")[: request.k]]

    # --- the logging policy ---------------------------------------------------------------

    def logging_scores(self, request: Request) -> np.ndarray:
        """Per candidate, the logging policy's score: the interest-overlap rule (shared declared
        categories and domains, or search filters for anonymous visitors, then popularity)."""
        if request.user is not None:
            facets = self.user_facets
            columns = facets.indices[facets.indptr[request.user] : facets.indptr[request.user + 1]]
        else:
            columns = np.flatnonzero(self.search_facets(request.search))
        overlap = self.service_facets[np.ix_(request.rows, columns)].sum(axis=1)
        return overlap + self.popular[request.rows]

    # --- requests and sessions ------------------------------------------------------------

    def requests(self, n: int, seed: int, start: dt.datetime | None = None) -> list[Request]:
        """`n` panel views over 30 days from `start`, in time order (fewer when a visitor has
        too few services left to fill the panel)."""
        return _RequestDrawer(self, np.random.default_rng([seed, REQUEST_STREAM])).draw(n, start)

    def log(
        self,
        requests: Sequence[Request],
        seed: int,
        exploration: Exploration = LOGGING,
        scores: Sequence[np.ndarray] | None = None,
        engine: str = LOGGING_ENGINE,
    ) -> Logged:
        """Show each request a slate drawn by `exploration` over `scores` (per request, one per
        candidate; default: the interest-overlap rule), record it with its propensities (the
        Recommendation's `policy`, `propensities`, `slate_propensity`) and simulate the
        visitor's clicks and journeys."""
        rng = np.random.default_rng([seed, OUTCOME_STREAM])
        logger = _Logger(self, rng)
        rewards = np.full((len(requests), max(PANEL_K.values())), np.nan)
        for i, request in enumerate(requests):
            given = self.logging_scores(request) if scores is None else scores[i]
            values = logger.serve(request, np.asarray(given, np.float64), exploration, engine)
            rewards[i, : len(values)] = values
        logger.actions.sort(key=lambda action: action["timestamp"])
        return Logged(logger.recommendations, logger.actions, list(requests), rewards)


@dataclass(frozen=True)
class _Columns:
    keys: np.ndarray  # one int64 key per (field, id): hashed into the facet's latent vector
    index: dict[tuple[str, int], int]


FACET_FIELDS = ("categories", "scientific_domains")


def _facet_columns(entities: list[dict]) -> _Columns:
    values = sorted(
        {(field, v) for e in entities for field in FACET_FIELDS for v in e.get(field) or []}
    )
    index = {value: i for i, value in enumerate(values)}
    # Categories and domains share no key: a domain's id is offset by 2^40.
    keys = np.array(
        [v + (1 << 40) * FACET_FIELDS.index(field) for field, v in values], dtype=np.int64
    )
    return _Columns(keys, index)


def _incidence(entities: list[dict], columns: _Columns) -> sparse.csr_matrix:
    rows, cols = [], []
    for row, entity in enumerate(entities):
        for field in FACET_FIELDS:
            for value in entity.get(field) or []:
                rows.append(row)
                cols.append(columns.index[(field, value)])
    data = np.ones(len(rows))
    matrix = sparse.csr_matrix((data, (rows, cols)), shape=(len(entities), len(columns.keys)))
    matrix.data[:] = 1.0  # a value listed twice still counts once
    return matrix


def _splitmix(values: np.ndarray) -> np.ndarray:
    """A 64-bit mixing hash (splitmix64's finaliser), elementwise on uint64."""
    z = values + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def _hashed_uniform(ids: np.ndarray, seed: int, salt: int, width: int = 1) -> np.ndarray:
    """[len(ids), width] (or [len(ids)] when width is 1) uniforms in (0, 1) from the ids."""
    with np.errstate(over="ignore"):
        key = _splitmix(np.uint64(seed) * np.uint64(1_000_003) + np.uint64(salt))
        columns = np.arange(width, dtype=np.uint64)
        cells = ids.astype(np.uint64)[:, None] * np.uint64(width) + columns
        mixed = _splitmix(_splitmix(cells ^ key))
    uniforms = ((mixed >> np.uint64(11)).astype(np.float64) + 0.5) / float(1 << 53)
    return uniforms[:, 0] if width == 1 else uniforms


def _hashed_normal(ids: np.ndarray, seed: int, salt: int) -> np.ndarray:
    """[len(ids), LATENT_DIM] standard normals from the ids (Box-Muller on hashed uniforms)."""
    uniforms = _hashed_uniform(np.asarray(ids, np.int64), seed, salt, 2 * LATENT_DIM)
    first, second = uniforms[:, :LATENT_DIM], uniforms[:, LATENT_DIM:]
    return np.sqrt(-2.0 * np.log(first)) * np.cos(2.0 * np.pi * second)


def _unit(matrix) -> np.ndarray:
    """Rows scaled to length 1 (zero rows stay zero)."""
    matrix = np.asarray(matrix, dtype=np.float64)
    norms = np.linalg.norm(matrix, axis=-1, keepdims=True)
    return np.divide(matrix, norms, out=np.zeros_like(matrix), where=norms > 0)


# --- journeys ------------------------------------------------------------------------------


def leave_factor(affinity: np.ndarray) -> np.ndarray:
    """How much less than the base flow a visitor of this affinity leaves a service's pages."""
    return 1.0 - LEAVE_DROP * np.clip(affinity, 0.0, 1.0)


def flow_options(page: str, factor: float) -> tuple[list[str], np.ndarray]:
    """The next pages from `page` and their probabilities for a visitor's leave factor."""
    names = [name for name, _ in FLOW[page]]
    weights = np.array([w * factor if name in LEAVING else w for name, w in FLOW[page]])
    return names, weights / weights.sum()


def journey_value_exact(factors: np.ndarray) -> np.ndarray:
    """E[best value of a journey] per leave factor: dynamic programming over the chain's states
    (page, best value so far) after each recorded action, vectorised over `factors`."""
    factors = np.asarray(factors, dtype=np.float64)
    pages = list(FLOW)
    level = {value: i for i, value in enumerate(VALUE_LEVELS)}
    # mass[p, b]: probability of being on page p with best b, the journey still going
    mass = np.zeros((len(pages), len(VALUE_LEVELS), len(factors)))
    mass[pages.index(""), level[CLICK_VALUE]] = 1.0
    ended = np.zeros((len(VALUE_LEVELS), len(factors)))
    for _ in range(MAX_STEPS - 1):
        moved = np.zeros_like(mass)
        for p, page in enumerate(pages):
            base = np.array([w for _, w in FLOW[page]])[:, None]
            leaving = np.array([name in LEAVING for name, _ in FLOW[page]])[:, None]
            weights = base * np.where(leaving, factors[None, :], 1.0)
            weights /= weights.sum(axis=0, keepdims=True)
            for (name, _), share in zip(FLOW[page], weights, strict=True):
                for b, best in enumerate(VALUE_LEVELS):
                    flow = mass[p, b] * share
                    if name == "exit":
                        ended[b] += flow
                        continue
                    after = level[max(best, STEP_VALUES.get((page, name), 0.0))]
                    if name in ENDING:
                        ended[after] += flow
                    else:
                        moved[pages.index(name), after] += flow
        mass = moved
    ended += mass.sum(axis=0)  # the step limit ends the rest
    return np.array(VALUE_LEVELS) @ ended


@cache
def _value_table() -> np.ndarray:
    return journey_value_exact(leave_factor(np.linspace(0.0, 1.0, AFFINITY_GRID)))


def journey_value(affinity: np.ndarray) -> np.ndarray:
    """E[best value of a clicked service's journey] per affinity (interpolated table)."""
    clipped = np.clip(np.asarray(affinity, dtype=np.float64), 0.0, 1.0)
    return np.interp(clipped, np.linspace(0.0, 1.0, AFFINITY_GRID), _value_table())


# --- drawing requests and sessions -------------------------------------------------------


def _timestamp(moment: dt.datetime) -> str:
    """The Marketplace's format: milliseconds and an offset without a colon."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"


class _RequestDrawer:
    def __init__(self, world: World, rng: np.random.Generator):
        self.world = world
        self.rng = rng
        self.browsers: dict[int, str] = {}
        category_ids = sorted({v for f, v in world.columns.index if f == "categories"})
        domain_ids = sorted({v for f, v in world.columns.index if f == "scientific_domains"})
        self.category_ids, self.domain_ids = category_ids, domain_ids

    def draw(self, n: int, start: dt.datetime | None) -> list[Request]:
        start = start or DEFAULT_START
        if start.tzinfo is not None:
            start = start.astimezone(dt.UTC).replace(tzinfo=None)
        # Whole milliseconds: what MongoDB keeps and the timestamps' text shows.
        start = start.replace(microsecond=start.microsecond // 1000 * 1000)
        offsets = np.sort(self.rng.integers(0, SPAN // dt.timedelta(milliseconds=1), n))
        drawn = (self.request(start + dt.timedelta(milliseconds=o)) for o in offsets.tolist())
        return [request for request in drawn if request is not None]

    def _browser(self, user: int | None) -> str:
        """A logged-in user keeps one browser id (`unique_id`); each anonymous visit a new one."""
        if user is None:
            return uuids(self.rng, 1)[0]
        if user not in self.browsers:
            self.browsers[user] = uuids(self.rng, 1)[0]
        return self.browsers[user]

    def _search(self, user: dict | None) -> dict:
        """The list's filters: often none; else a category of interest, sometimes a domain."""
        roll = self.rng.random()
        if roll < 0.45:
            return {}
        cats = user["categories"] if user and user["categories"] else self.category_ids
        if not cats:  # a catalogue without categories: nothing to filter on
            return {}
        search: dict = {"categories": [int(self.rng.choice(cats))], "sort": "_score"}
        doms = (
            user["scientific_domains"] if user and user["scientific_domains"] else self.domain_ids
        )
        if roll > 0.85 and doms:
            search["scientific_domains"] = [int(self.rng.choice(doms))]
        return search

    def _candidates(self, search: dict, excluded: np.ndarray, k: int) -> tuple[np.ndarray, dict]:
        """Rows of the search's results, and the search that gave them: the unfiltered list
        (and no filters) when fewer than 2K services match the category filter."""
        world = self.world
        allowed = np.ones(len(world.ids), dtype=bool)
        allowed[excluded] = False
        rows = np.flatnonzero(allowed)
        if search:
            wanted = world.search_facets({"categories": search["categories"]})
            filtered = rows[world.service_facets[np.ix_(rows, np.flatnonzero(wanted))].any(axis=1)]
            if len(filtered) >= 2 * k:
                rows = filtered
            else:
                search = {}
        size = min(len(rows), int(self.rng.integers(CANDIDATES[0], CANDIDATES[1] + 1)))
        return (self.rng.choice(rows, size=size, replace=False) if size else rows), search

    def request(self, moment: dt.datetime) -> Request | None:
        rng, world = self.rng, self.world
        user = None
        if world.users and rng.random() >= ANONYMOUS_SHARE:
            user = int(rng.integers(len(world.users)))
        panel = "v1" if rng.random() < V1_SHARE else "v2"
        profile = world.users[user] if user is not None else None
        excluded = world.rows(profile["accessed_services"]) if profile else np.zeros(0, np.int64)
        rows, search = self._candidates(self._search(profile), excluded, PANEL_K[panel])
        if len(rows) < PANEL_K[panel]:
            return None
        return Request(
            moment=moment,
            user=user,
            unique_id=self._browser(user),
            visit_id=uuids(rng, 1)[0],
            panel=panel,
            search=search,
            rows=rows,
            candidates=world.ids[rows],
        )


class _Logger:
    """Serves requests, simulates the visitors' reactions and keeps the records made."""

    def __init__(self, world: World, rng: np.random.Generator):
        self.world = world
        self.rng = rng
        self.recommendations: list[dict] = []
        self.actions: list[dict] = []

    def serve(
        self, request: Request, scores: np.ndarray, exploration: Exploration, engine: str
    ) -> np.ndarray:
        """Log one recommendation and its sessions; the realised value at each position."""
        world, rng = self.world, self.rng
        seed = int(rng.integers(2**63)) if exploration.enabled else 0
        slate = choose(scores, request.k, exploration, np.random.default_rng(seed))
        shown = slate.positions
        user = world.users[request.user] if request.user is not None else None
        self.recommendations.append(
            {
                "user": user["id"] if user else None,
                "unique_id": request.unique_id,
                "client_id": "marketplace",
                "timestamp": request.moment,
                "visit_id": request.visit_id,
                "page_id": "/services",
                "panel_id": request.panel,
                "engine_version": engine,
                "services": request.candidates[shown].tolist(),
                "scores": scores[shown].round(4).tolist(),
                "candidates": request.candidates.tolist(),
                "search_data": request.search,
                "policy": {
                    "engine": engine,
                    "model_version": None,
                    "experiment": None,
                    "variant": None,
                    "exploration": {
                        "method": exploration.method,
                        "epsilon": exploration.epsilon,
                        "temperature": exploration.temperature,
                        "pool": exploration.pool,
                    },
                    "seed": seed,
                },
                "propensities": slate.propensities.tolist(),
                "slate_propensity": slate.slate_propensity,
            }
        )
        clicks = (
            rng.random(len(shown))
            < world.click_probabilities(request)[shown, np.arange(len(shown))]
        )
        factors = leave_factor(world.affinity(request)[shown])
        values = np.zeros(len(shown))
        for position in np.flatnonzero(clicks).tolist():
            values[position] = self._journey(
                request, user, int(shown[position]), float(factors[position])
            )
        return values

    def _journey(self, request: Request, user: dict | None, position: int, factor: float) -> float:
        """A click on a recommended service, then a walk through its pages; its value."""
        row = int(request.rows[position])
        page = f"/services/{self.world.slugs[row]}"
        root = {
            "type": "recommendation_panel",
            "panel_id": request.panel,
            "resource_type": "service",
            "resource_id": int(request.candidates[position]),
        }
        source = (request.visit_id, "/services")
        moment, step, previous, best = request.moment, "", None, CLICK_VALUE
        for _ in range(MAX_STEPS):
            moment += dt.timedelta(milliseconds=round(1000 + self.rng.exponential(25_000)))
            target_page = {"": page, "back": "/services", "order": "/projects"}.get(
                step, f"{page}/{step}"
            )
            target = (uuids(self.rng, 1)[0], target_page)
            text = BUTTONS[step] if source[1] != "/services" else "Go to service"
            self.actions.append(
                _action(user, request.unique_id, moment, source, root, target, text, step)
            )
            if previous is not None:
                best = max(best, STEP_VALUES.get((previous, step), 0.0))
            if step in ENDING:
                break
            names, probabilities = flow_options(step, factor)
            previous, step = step, names[int(self.rng.choice(len(names), p=probabilities))]
            if step == "exit":
                break
            source = target
        return best


def _action(
    user: dict | None,
    unique_id: str,
    moment: dt.datetime,
    source: tuple[str, str],
    root: dict,
    target: tuple[str, str],
    text: str,
    step: str,
) -> dict:
    """A `POST /user_actions` payload; `source` and `target` are (visit id, page id)."""
    payload = {
        "unique_id": unique_id,
        "timestamp": _timestamp(moment),
        "client_id": "marketplace",
        "source": {"visit_id": source[0], "page_id": source[1], "root": root},
        "target": {"visit_id": target[0], "page_id": target[1]},
        "action": {"type": "button", "text": text, "order": step == "order"},
    }
    if user is not None:
        payload["user_id"] = user["id"]
    return payload
