"""The registry: the engines this process serves and trains, derived from the engine folders'
specs and the ENGINES setting, plus the selector that picks an engine for each request.

Adding an engine is adding a folder under `recommender/engines/` whose `__init__.py` declares
`SPEC` (see spec.py), and naming its served names in ENGINES. Nothing else lists engines.

Selection for one request (`select`):
1. The preferred engine: the requested `engine_version`, else DEFAULT_RECOMMENDATION_ALG (read
   live, see `DefaultAlgorithm`), both matched case-insensitively; unknown names are ignored.
2. The request is a *ranking* request when the preferred engine is a ranking variant: it then
   only ever gets a ranking.
3. Logged-in users: preferred, default, then the ENGINES order (same kind of answer only).
   Anonymous visitors: the requested engine unless it is a floor, then the engines that serve
   anonymous visitors in ENGINES order, the floor (Random) last; they answer a ranking request
   by ranking every candidate. Engines that are not ready (no model) are skipped.
"""

from __future__ import annotations

import os
import pkgutil
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from dotenv import dotenv_values

from recommender.engines.base.engine import Engine, ServingDeps
from recommender.engines.spec import EngineSpec, Stage, resolve

DEFAULT_ALG_VARIABLE = "DEFAULT_RECOMMENDATION_ALG"


class ConfigurationError(ValueError):
    """The ENGINES setting names something no engine folder serves (or twice)."""


def discover_specs(package: str = "recommender.engines") -> list[EngineSpec]:
    """Every engine folder's SPEC, in folder-name order (importing only their `__init__`)."""
    module = __import__(package, fromlist=["__path__"])
    specs = []
    for info in sorted(pkgutil.iter_modules(module.__path__), key=lambda found: found.name):
        if info.ispkg:
            spec = getattr(__import__(f"{package}.{info.name}", fromlist=["SPEC"]), "SPEC", None)
            if isinstance(spec, EngineSpec):
                specs.append(spec)
    return specs


@dataclass(frozen=True)
class Served:
    """One served name: the engine behind it and how it answers."""

    name: str
    engine: Engine
    spec: EngineSpec
    ranking: bool  # the ranking variant: answers with every candidate, ordered

    @property
    def anonymous(self) -> bool:
        return self.spec.anonymous


@dataclass(frozen=True)
class Choice:
    name: str  # the served name reported as `engine_version`
    engine: Engine
    ranking: bool  # answer with every candidate ranked, not the top K


class DefaultAlgorithm:
    """DEFAULT_RECOMMENDATION_ALG, re-read on every request.

    The process environment is read each time; `.env` is re-read when its modification time
    changes. Once `.env` was edited after the first read, its value wins (at start-up `.env` has
    been copied into the environment, so an edit is the operator's newer word). `fallback`: the
    setting's value when the app was built.
    """

    def __init__(self, path: str | os.PathLike | None = None, fallback: str = "Auto"):
        self._path = path
        self.fallback = fallback
        self._read = False
        self._first_mtime: int | None = None
        self._mtime: int | None = None
        self._from_file: str | None = None

    @property
    def path(self) -> str:
        return os.fspath(self._path or os.path.join(os.getcwd(), ".env"))

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
        return os.environ.get(DEFAULT_ALG_VARIABLE) or self._from_file or self.fallback


def _stage_order(stages: Mapping[str, Stage], wanted: Sequence[str]) -> list[Stage]:
    """`wanted` stages and what they require, each after its requirements (ties: spec order)."""
    ordered: list[Stage] = []
    visiting: set[str] = set()

    def visit(name: str) -> None:
        if any(stage.name == name for stage in ordered):
            return
        if name not in stages:
            raise ConfigurationError(f"a stage requires {name!r}, which no engine folder has")
        if name in visiting:
            raise ConfigurationError(f"training stages require each other around {name!r}")
        visiting.add(name)
        for required in stages[name].requires:
            visit(required)
        visiting.discard(name)
        ordered.append(stages[name])

    for name in wanted:
        visit(name)
    return ordered


class Registry:
    """The served engines (ENGINES order) and the training stages they need."""

    def __init__(
        self,
        specs: Sequence[EngineSpec],
        enabled: Sequence[str],
        deps: ServingDeps,
        default_algorithm: DefaultAlgorithm | None = None,
    ):
        self.specs = list(specs)
        self.default_algorithm = default_algorithm or DefaultAlgorithm(
            fallback=deps.settings.DEFAULT_RECOMMENDATION_ALG
        )
        by_served = {name.lower(): spec for spec in self.specs for name in spec.served}
        engines: dict[str, Engine] = {}
        self.served: dict[str, Served] = {}
        for name in enabled:
            spec = by_served.get(name.strip().lower())
            if spec is None:
                known = ", ".join(sorted(n for s in self.specs for n in s.served))
                raise ConfigurationError(f"ENGINES names {name!r}: no engine serves it ({known})")
            served_name = next(n for n in spec.served if n.lower() == name.strip().lower())
            if served_name in self.served:
                raise ConfigurationError(f"ENGINES names {served_name!r} twice")
            if spec.name not in engines:
                engines[spec.name] = resolve(spec.serve)(deps)
            self.served[served_name] = Served(
                served_name, engines[spec.name], spec, served_name == spec.ranking
            )
        self._by_lower = {name.lower(): served for name, served in self.served.items()}
        self._orders: dict[tuple, tuple[Choice, ...]] = {}

    # --- what is served ---

    def find(self, name: str | None) -> Served | None:
        """The served name `name`, ignoring case and surrounding spaces."""
        return self._by_lower.get(name.strip().lower()) if name else None

    def engines(self) -> dict[str, Engine]:
        """Every served name's engine, in ENGINES order (a name's variants share one engine)."""
        return {name: served.engine for name, served in self.served.items()}

    def health_checks(self) -> dict[str, object]:
        """One readiness check per served name, for `GET /health`."""
        return {name: served.engine.is_ready for name, served in self.served.items()}

    def pipeline_of(self, name: str) -> str | None:
        """The training pipeline whose verdict decides whether served name `name` has a model."""
        return self.served[name].spec.pipeline

    # --- selection ---

    def _order(self, requested: str | None, default: str | None, anonymous: bool):
        preferred = self.find(requested) or self.find(default)
        ranking = bool(preferred and preferred.ranking)
        if anonymous:
            wanted = self.find(requested)
            first = [wanted] if wanted and wanted.anonymous and not wanted.spec.floor else []
            able = [s for s in self.served.values() if s.anonymous]
            rest = [s for s in able if not s.spec.floor] + [s for s in able if s.spec.floor]
            # A floor answers in its own kind (a ranking request gets RandomRanking).
            order = [s for s in first + rest if not s.spec.floor or s.ranking == ranking]
        else:
            named = [self.find(requested), self.find(default), *self.served.values()]
            order = [s for s in named if s is not None and s.ranking == ranking]
        unique = list(dict.fromkeys(s.name for s in order))  # each once, first place kept
        return tuple(Choice(name, self.served[name].engine, ranking) for name in unique)

    def candidates(self, requested: str | None, anonymous: bool) -> tuple[Choice, ...]:
        """The engines to try for this request, best first (readiness not checked yet)."""
        default = self.default_algorithm.get()
        key = (self._canonical(requested), self._canonical(default), anonymous)
        choices = self._orders.get(key)
        if choices is None:  # a few dozen keys at most: names are canonical
            choices = self._orders[key] = self._order(*key)
        return choices

    def _canonical(self, name: str | None) -> str | None:
        served = self.find(name)
        return served.name if served else None

    def select(self, requested: str | None, anonymous: bool) -> Iterator[Choice]:
        """`candidates` that are ready (have their model), lazily; the floor always is."""
        return (c for c in self.candidates(requested, anonymous) if c.engine.is_ready()[0])

    # --- training and evaluation ---

    def stages(self) -> list[Stage]:
        """The training chain: the stages of every served engine's folder and what they
        require, each after its requirements."""
        everything = {stage.name: stage for spec in self.specs for stage in spec.stages}
        wanted = []
        for spec in dict.fromkeys(served.spec for served in self.served.values()):
            wanted += [stage.name for stage in spec.stages]
        return _stage_order(everything, wanted)

    def stage(self, name: str) -> Stage:
        for stage in self.stages():
            if stage.name == name:
                return stage
        raise KeyError(f"No training stage named {name!r}")

    def evaluators(self) -> dict[str, str]:
        """Served top-K name (else ranking name) -> "module:function" of its offline evaluator,
        for every served engine folder that has one."""
        found: dict[str, str] = {}
        for served in self.served.values():
            spec = served.spec
            if spec.evaluate and spec.evaluate not in found.values():
                found[spec.top_k or served.name] = spec.evaluate
        return found
