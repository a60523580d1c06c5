"""The engine registry and the selector that picks an engine for each request.

Registering an engine: add ONE line to `ENGINE_CLASSES` below, "package.module:ClassName", where
the class implements `recommender.engines.base.engine.Engine` and can be built with no
arguments (cheaply: models load lazily through `model_cache`). Its `name` fixes its place in
`ORDER` (the original's order, plus Popularity); an unknown name goes last. Each registered
engine also gets a `GET /health` check (its `is_ready()`).

Selection for one request (`select`):
1. The preferred engine: the requested `engine_version`, else DEFAULT_RECOMMENDATION_ALG (read
   from the environment and `.env`, re-read when `.env` changes), both matched
   case-insensitively; unknown names are ignored.
2. The request is a *ranking* request when the preferred engine is a ranking engine
   (NCFRanking, RandomRanking): it then only ever gets a ranking.
3. Logged-in users: preferred, default, then registry order. Anonymous users: the requested
   engine, then Popularity, then Random (RandomRanking for ranking requests). Engines that need
   a user are skipped for anonymous users, and engines that are not ready (no model) are skipped.
"""

from __future__ import annotations

import importlib
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass

from dotenv import dotenv_values

from recommender.engines.base.engine import Engine

ENGINE_CLASSES: list[str] = [
    "recommender.engines.random.engine:Random",
    "recommender.engines.random.engine:RandomRanking",
    "recommender.engines.popularity.engine:Popularity",
    "recommender.engines.ncf.inference:NCF",
    "recommender.engines.ncf.inference:NCFRanking",
    "recommender.engines.rl.engine:RL",
]
ORDER = ("NCF", "RL", "Random", "NCFRanking", "RandomRanking", "Popularity")
_ORDER_LOWER = {name.lower() for name in ORDER}
RANKING_NAMES = ("NCFRanking", "RandomRanking")
_RANKING_LOWER = {name.lower() for name in RANKING_NAMES}
ANONYMOUS_TOP_K = ("Popularity", "Random")
ANONYMOUS_RANKING = ("Popularity", "RandomRanking")
DEFAULT_ALG_VARIABLE = "DEFAULT_RECOMMENDATION_ALG"
FALLBACK_DEFAULT = "NCF"

_engines: dict[str, Engine] | None = None
# (the engines dict it was built from, lowercase name -> engine)
_by_lower: tuple[dict | None, dict[str, Engine]] = (None, {})
_lock = threading.Lock()


def _load(path: str) -> Engine:
    module, _, cls = path.partition(":")
    return getattr(importlib.import_module(module), cls)()


def _position(engine: Engine) -> int:
    return ORDER.index(engine.name) if engine.name in ORDER else len(ORDER)


def engines() -> dict[str, Engine]:
    """Every registered engine by name, in registry order (built once per process)."""
    global _engines
    if _engines is None:
        with _lock:
            if _engines is None:
                built = sorted((_load(path) for path in ENGINE_CLASSES), key=_position)
                _engines = {engine.name: engine for engine in built}
    return _engines


def find(name: str | None) -> Engine | None:
    """The registered engine called `name`, ignoring case."""
    global _by_lower
    if not name:
        return None
    current = engines()
    if _by_lower[0] is not current:
        _by_lower = (current, {n.lower(): engine for n, engine in current.items()})
    return _by_lower[1].get(name.strip().lower())


def known(name: str | None) -> bool:
    """A registered engine's name, or one of the original's names (maybe not registered here)."""
    return find(name) is not None or (bool(name) and name.strip().lower() in _ORDER_LOWER)


def is_ranking(name: str | None) -> bool:
    engine = find(name)
    if engine is not None:
        return engine.ranking
    return bool(name) and name.strip().lower() in _RANKING_LOWER


class DefaultAlgorithm:
    """DEFAULT_RECOMMENDATION_ALG, re-read on every request.

    The process environment is read each time; `.env` is re-read when its modification time
    changes. Once `.env` was edited after the first read, its value wins (at start-up `.env` has
    been copied into the environment, so an edit is the operator's newer word).
    """

    def __init__(self, path: str | None = None):
        self._path = path
        self._read = False
        self._first_mtime: int | None = None
        self._mtime: int | None = None
        self._from_file: str | None = None

    @property
    def path(self) -> str:
        return self._path or os.path.join(os.getcwd(), ".env")

    def _read_file(self) -> None:
        try:
            mtime: int | None = os.stat(self.path).st_mtime_ns
        except OSError:
            mtime = None
        if not self._read:
            self._read, self._first_mtime = True, mtime
        elif mtime == self._mtime:
            return
        values = dotenv_values(self.path) if mtime is not None else {}
        self._from_file = values.get(DEFAULT_ALG_VARIABLE) or None
        self._mtime = mtime

    def get(self) -> str:
        self._read_file()
        edited = self._mtime != self._first_mtime
        if edited and self._from_file:
            return self._from_file
        return os.environ.get(DEFAULT_ALG_VARIABLE) or self._from_file or FALLBACK_DEFAULT


default_algorithm = DefaultAlgorithm()


@dataclass(frozen=True)
class Choice:
    engine: Engine
    ranking: bool  # answer with every candidate ranked, not the top K


def _unique(names: list[str | None]) -> list[Engine]:
    seen: dict[str, Engine] = {}
    for name in names:
        engine = find(name)
        if engine is not None and engine.name not in seen:
            seen[engine.name] = engine
    return list(seen.values())


def _canonical(name: str | None) -> str | None:
    """A registered engine's own name, an original name in lower case, or None (unknown)."""
    engine = find(name)
    if engine is not None:
        return engine.name
    return name.strip().lower() if known(name) else None


def _order(requested: str | None, default: str | None, anonymous: bool) -> tuple[Choice, ...]:
    ranking = is_ranking(requested or default)
    if anonymous:
        fallbacks = ANONYMOUS_RANKING if ranking else ANONYMOUS_TOP_K
        # Asking for the random floor by name still gets Popularity first when it is trained.
        wanted = None if find(requested) is find(fallbacks[-1]) else requested
        order = [e for e in _unique([wanted, *fallbacks]) if not e.needs_user]
    else:
        # A ranking request only gets ranking engines; a top-K request never gets one.
        order = [e for e in _unique([requested, default, *engines()]) if e.ranking == ranking]
    return tuple(Choice(engine, ranking) for engine in order)


# (the engines dict it was built for, (requested, default, anonymous) -> choices); the keys are
# canonical names, so there are only a few dozen whatever clients send.
_orders: tuple[dict | None, dict[tuple, tuple[Choice, ...]]] = (None, {})


def candidates(requested: str | None, anonymous: bool) -> tuple[Choice, ...]:
    """The engines to try for this request, best first (readiness not checked yet)."""
    global _orders
    key = (_canonical(requested), _canonical(default_algorithm.get()), anonymous)
    current = engines()
    if _orders[0] is not current:
        _orders = (current, {})
    choices = _orders[1].get(key)
    if choices is None:
        choices = _orders[1][key] = _order(*key)
    return choices


def select(requested: str | None, anonymous: bool) -> Iterator[Choice]:
    """`candidates` that are ready (have their model), lazily; the Random floor always is."""
    return (choice for choice in candidates(requested, anonymous) if choice.engine.is_ready()[0])


def register_health_checks() -> None:
    """One `GET /health` check per registered engine (its readiness)."""
    from recommender.services.health import ENGINE_CHECKS

    for name, engine in engines().items():
        ENGINE_CHECKS[name] = engine.is_ready
