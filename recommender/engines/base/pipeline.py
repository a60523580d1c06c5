"""The training framework every trained engine shares.

A pipeline subclasses `Pipeline` and implements typed steps, run in this order:

    extract(ctx) -> Raw                      read what it needs (each collection once, projected)
    validate_data(raw, ctx) -> None          raise DataValidationError: rejected, no model written
    prepare(raw, ctx) -> Data                features, splits, loaders
    train(data, ctx) -> Model                fit (ctx.rng / ctx.torch_generator() for randomness)
    evaluate(model, data, ctx) -> dict       metrics, stored on the candidate version
    validate_model(model, metrics, ctx)      raise ModelValidationError: candidate rejected

`package(model, metrics, ctx)` turns the model into `Artifact`s (state dicts + config) that are
saved as *candidates* before `validate_model`; they go live (model_store.promote) only when it
passes, otherwise they are rejected with the reason and the previous version keeps serving.

Each step's status, duration and details (`ctx.details`, filled by the step) are written to
`PipelineMetadata` as the run goes, and so are the evaluated metrics and, at the end, the
report's curves (the dashboard draws them). A `RejectedError` (data or model validation) ends
the run as "rejected"; any other exception as "failed"; in both cases a saved candidate is
rejected, so no half-written model ever goes live. `run()` never raises.

Randomness: `run(env, seed)` seeds torch, Python and numpy's global state, and gives the steps
`ctx.rng` (a numpy Generator) and `ctx.torch_generator()`; the same seed gives the same weights.

A stage is given a `TrainingEnv`: the settings, and the served engines (a stage that compares
itself with other engines, as RL does with NCF, finds them there instead of importing them).
"""

from __future__ import annotations

import dataclasses
import logging
import random
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, TypeVar

import numpy as np
import torch
from tqdm.auto import tqdm

from recommender import metrics as prometheus
from recommender.engines.base.device import training_device
from recommender.engines.base.outcome import PipelineOutcome
from recommender.engines.base.report import TrainingReport
from recommender.engines.spec import TrainingEnv
from recommender.model_store import versions as model_store
from recommender.models.ops import ModelVersion, PipelineMetadata, StepMetadata, utcnow

logger = logging.getLogger(__name__)

STEPS = ("extract", "validate_data", "prepare", "train", "evaluate", "validate_model")
RawT = TypeVar("RawT")
DataT = TypeVar("DataT")
ModelT = TypeVar("ModelT")
T = TypeVar("T")


class RejectedError(Exception):
    """A validation failure: the run is recorded as rejected with this message as the reason."""


class DataValidationError(RejectedError):
    """The data cannot train a model (too few users, no features, ...): nothing is written."""


class ModelValidationError(RejectedError):
    """The trained model is not good enough: its candidate is rejected, the live one stays."""


@dataclass(frozen=True)
class Artifact:
    """One model version to store: tensors (a possibly nested state dict) + rebuild config."""

    name: str
    tensors: dict[str, Any]
    config: dict = field(default_factory=dict)


@dataclass
class RunContext:
    """What every step gets: seeded randomness, the device, progress bars, the report."""

    env: TrainingEnv
    pipeline: str
    seed: int
    rng: np.random.Generator
    device: torch.device
    progress: bool
    report: TrainingReport
    metadata: PipelineMetadata
    details: dict = field(default_factory=dict)  # the current step's details (plain values)

    def torch_generator(self) -> torch.Generator:
        """A CPU torch generator seeded from `rng` (e.g. for DataLoader shuffling)."""
        generator = torch.Generator()
        generator.manual_seed(int(self.rng.integers(2**62)))
        return generator

    def bar(self, iterable: Iterable[T], desc: str, total: int | None = None) -> Iterable[T]:
        """`iterable` with a tqdm progress bar when progress is on."""
        if not self.progress:
            return iterable
        return tqdm(iterable, desc=f"{self.pipeline} {desc}", total=total, leave=False)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def plain(value: Any) -> Any:
    """`value` with numpy/torch values, tuples and dataclasses made storable in MongoDB."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return plain(dataclasses.asdict(value))
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, np.generic | np.ndarray | torch.Tensor):
        return value.tolist()  # a scalar's tolist() is the Python number
    return value


class Pipeline(ABC, Generic[RawT, DataT, ModelT]):
    """Subclass, set `name` (as recorded in PipelineMetadata), implement the steps, `run()`."""

    name: ClassVar[str]
    # Models that must be live before this pipeline can run (e.g. NCF needs "embeddings").
    requires: ClassVar[tuple[str, ...]] = ()

    @abstractmethod
    def extract(self, ctx: RunContext) -> RawT: ...

    def validate_data(self, raw: RawT, ctx: RunContext) -> None:
        """Raise DataValidationError when `raw` cannot train a model."""

    @abstractmethod
    def prepare(self, raw: RawT, ctx: RunContext) -> DataT: ...

    @abstractmethod
    def train(self, data: DataT, ctx: RunContext) -> ModelT: ...

    @abstractmethod
    def evaluate(self, model: ModelT, data: DataT, ctx: RunContext) -> dict[str, Any]: ...

    def validate_model(self, model: ModelT, metrics: dict[str, Any], ctx: RunContext) -> None:
        """Raise ModelValidationError when the model must not go live."""

    @abstractmethod
    def package(
        self, model: ModelT, metrics: dict[str, Any], ctx: RunContext
    ) -> Artifact | Sequence[Artifact]: ...

    def run(self, env: TrainingEnv, seed: int | None = None, progress: bool = False):
        """Run every step (see the module doc); never raises."""
        return PipelineRun(self, env, env.seed(seed), progress).execute()


class PipelineRun:
    """One execution of a pipeline: the step loop, metadata bookkeeping and promotion."""

    def __init__(self, pipeline: Pipeline, env: TrainingEnv, seed: int, progress: bool):
        self.pipeline = pipeline
        self.metadata = PipelineMetadata(
            pipeline=pipeline.name, seed=seed, steps=[StepMetadata(name=name) for name in STEPS]
        ).save()
        seed_everything(seed)
        self.ctx = RunContext(
            env=env,
            pipeline=pipeline.name,
            seed=seed,
            rng=np.random.default_rng(seed),
            device=training_device(env.settings.TRAINING_DEVICE),
            progress=progress,
            report=TrainingReport(pipeline.name, env.settings.runs_dir),
            metadata=self.metadata,
        )
        self.candidates: list[ModelVersion] = []

    def execute(self) -> PipelineOutcome:
        started = time.perf_counter()
        missing = [
            name for name in self.pipeline.requires if model_store.live_version(name) is None
        ]
        if missing:
            outcome = self._outcome("skipped", f"needs live model(s): {', '.join(missing)}")
        else:
            try:
                outcome = self._steps()
            except RejectedError as error:
                outcome = self._outcome("rejected", str(error))
            except Exception as error:  # recorded, never raised: the chain goes on
                logger.exception("Pipeline %s failed", self.pipeline.name)
                outcome = self._outcome("failed", f"{type(error).__name__}: {error}")
        report_dir = self._close_report()
        if report_dir is not None:
            outcome.metrics["report"] = str(report_dir)
        self._finish(outcome, time.perf_counter() - started)
        return outcome

    def _steps(self) -> PipelineOutcome:
        p, ctx = self.pipeline, self.ctx
        raw = self._step("extract", p.extract, ctx)
        self._step("validate_data", p.validate_data, raw, ctx)
        data = self._step("prepare", p.prepare, raw, ctx)
        del raw  # large extracts need not outlive preparation
        model = self._step("train", p.train, data, ctx)
        metrics = plain(self._step("evaluate", p.evaluate, model, data, ctx))
        self.metadata.metrics = metrics
        self._step("validate_model", self._save_and_validate, model, metrics)
        keep = self.ctx.env.settings.MODEL_VERSIONS_KEPT
        for candidate in self.candidates:
            model_store.promote(candidate, keep=keep)
        return self._outcome("promoted", None, metrics)

    def _save_and_validate(self, model: Any, metrics: dict) -> None:
        artifacts = self.pipeline.package(model, metrics, self.ctx)
        if isinstance(artifacts, Artifact):
            artifacts = [artifacts]
        for artifact in artifacts:
            self.candidates.append(
                model_store.save_candidate(
                    artifact.name,
                    artifact.tensors,
                    config=plain(artifact.config),
                    metrics=metrics,
                    pipeline_metadata=self.metadata,
                )
            )
        self.ctx.details["candidates"] = {c.name: c.version for c in self.candidates}
        self.pipeline.validate_model(model, metrics, self.ctx)

    def _step(self, name: str, call: Callable[..., T], *args: Any) -> T:
        step = self.metadata.steps[STEPS.index(name)]
        step.status, step.start_time = "running", utcnow()
        self.metadata.save()
        self.ctx.details = {}
        started = time.perf_counter()
        try:
            result = call(*args)
        except RejectedError as error:
            self._end_step(step, started, "rejected", error)
            raise
        except Exception as error:
            self._end_step(step, started, "failed", error)
            raise
        self._end_step(step, started, "completed")
        return result

    def _end_step(self, step: StepMetadata, started: float, status: str, error=None) -> None:
        step.status, step.end_time = status, utcnow()
        step.duration_s = time.perf_counter() - started
        step.details = plain(self.ctx.details)
        if error is not None:
            step.details["error"] = f"{type(error).__name__}: {error}"
        self.metadata.save()

    def _outcome(self, status: str, reason: str | None, metrics: dict | None = None):
        version = self.candidates[0].version if self.candidates and status == "promoted" else None
        return PipelineOutcome(
            pipeline=self.pipeline.name,
            status=status,
            reason=reason,
            model_version=version,
            metrics=dict(metrics or {}),
        )

    def _close_report(self):
        try:
            return self.ctx.report.close()
        except Exception:  # a report is a convenience: it never fails a run
            logger.exception("Writing the training report of %s failed", self.pipeline.name)
            return None

    def _finish(self, outcome: PipelineOutcome, seconds: float) -> None:
        if outcome.status != "promoted":
            for candidate in self.candidates:
                model_store.reject(candidate, outcome.reason or outcome.status)
        self.metadata.status = outcome.status
        self.metadata.reason = outcome.reason
        self.metadata.model_version = outcome.model_version
        self.metadata.curves = plain(dict(self.ctx.report.curves))
        self.metadata.end_time = utcnow()
        self.metadata.save()
        prometheus.TRAINING_SECONDS.labels(self.pipeline.name, outcome.status).observe(seconds)
        log = logger.info if outcome.ok else logger.warning
        log("Pipeline %s: %s (%s)", outcome.pipeline, outcome.status, outcome.reason or "ok")
