"""Training stages "ae" (user and service autoencoders) and "embedding" (vectors for everyone).

AE: multi-hot features (features.py) -> seeded train/validation split of the rows that have any
feature -> one autoencoder per entity kind with early stopping on the whole-validation loss ->
promoted as model "autoencoders" (both state dicts, vocabularies, shapes) only when each beats, on
validation, both the frequency baseline (always predicting each feature's training frequency)
and its untrained self (which starts from those frequencies, clipped a little differently).

Embedding: the live autoencoders' encoders applied to every user and service -> unit rows ->
model "embeddings" (ids + matrices + encoders, one GridFS file), read through embeddings.py.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
from scipy import sparse
from tqdm.auto import tqdm

from recommender.engines.autoencoders import AE_MODEL, EMBEDDINGS_MODEL
from recommender.engines.autoencoders import embeddings as emb
from recommender.engines.autoencoders.features import (
    ENTITY_FIELDS,
    RawEntities,
    Vocabulary,
    read_entities,
)
from recommender.engines.autoencoders.model import (
    EntityEncoder,
    FitResult,
    Shape,
    TrainConfig,
    fit,
    frequency_baseline,
)
from recommender.engines.base.outcome import PipelineOutcome
from recommender.engines.base.pipeline import (
    Artifact,
    DataValidationError,
    ModelValidationError,
    Pipeline,
    RunContext,
    TrainingEnv,
)
from recommender.model_store import versions as model_store

ENTITIES = ("users", "services")
Raw = dict[str, RawEntities]


@dataclass(frozen=True)
class AEConfig:
    dims: dict[str, int] = field(default_factory=lambda: {"users": 64, "services": 128})
    hidden: dict[str, int] = field(default_factory=lambda: {"users": 128, "services": 256})
    valid_fraction: float = 0.1
    min_rows: int = 2  # rows with at least one feature, per entity kind
    min_features: int = 2  # distinct feature values, per entity kind
    # Validation rows needed to pick weights by validation loss and to gate promotion on it;
    # below this (tiny catalogues) every epoch runs, the last weights are kept, no gate.
    min_valid_to_judge: int = 30
    train: TrainConfig = field(default_factory=TrainConfig)


@dataclass(frozen=True)
class Prepared:
    vocabulary: Vocabulary
    shape: Shape
    train: sparse.csr_matrix
    valid: sparse.csr_matrix


@dataclass(frozen=True)
class Trained:
    vocabulary: Vocabulary
    result: FitResult


def featured_rows(raw: RawEntities) -> np.ndarray:
    """Per document: True when it has at least one feature value."""
    total = sum(col.lengths for col in raw.cols.values())
    return np.asarray(total, dtype=np.int64) > 0


def read_every_entity(ctx: RunContext) -> Raw:
    """Users and services as the autoencoders read them, with each read's count and time in
    the step details."""
    raw = {}
    for entity in ENTITIES:
        started = time.perf_counter()
        raw[entity] = read_entities(entity)
        ctx.details[entity] = {"count": len(raw[entity])}
        ctx.details[f"{entity}_read_s"] = time.perf_counter() - started
    return raw


class AEPipeline(Pipeline[Raw, dict[str, Prepared], dict[str, Trained]]):
    name = "AE"

    def __init__(self, config: AEConfig | None = None):
        self.config = config or AEConfig()

    def extract(self, ctx: RunContext) -> Raw:
        return read_every_entity(ctx)

    def validate_data(self, raw: Raw, ctx: RunContext) -> None:
        problems = []
        for entity, entities in raw.items():
            featured = int(featured_rows(entities).sum())
            distinct = Vocabulary.fit(entities.cols).dim
            ctx.details[entity] = {
                "count": len(entities),
                "with_features": featured,
                "without_features": len(entities) - featured,
                "distinct_features": distinct,
            }
            fields = ", ".join(ENTITY_FIELDS[entity])
            if featured < self.config.min_rows:
                problems.append(
                    f"{entity}: {featured} of {len(entities)} have any of {fields}"
                    f" (at least {self.config.min_rows} needed)"
                )
            elif distinct < self.config.min_features:
                problems.append(
                    f"{entity}: {distinct} distinct feature value(s)"
                    f" (at least {self.config.min_features} needed)"
                )
        if problems:
            raise DataValidationError("; ".join(problems))

    def prepare(self, raw: Raw, ctx: RunContext) -> dict[str, Prepared]:
        prepared = {}
        for entity, entities in raw.items():
            vocabulary = Vocabulary.fit(entities.cols)
            matrix = vocabulary.transform(entities.cols)[featured_rows(entities)]
            order = ctx.rng.permutation(matrix.shape[0])
            n_valid = min(max(1, round(self.config.valid_fraction * len(order))), len(order) - 1)
            prepared[entity] = Prepared(
                vocabulary,
                Shape(vocabulary.dim, self.config.dims[entity], self.config.hidden[entity]),
                train=matrix[np.sort(order[n_valid:])],
                valid=matrix[np.sort(order[:n_valid])],
            )
            ctx.details[entity] = {
                "train": len(order) - n_valid,
                "valid": n_valid,
                "features": vocabulary.sizes(),
            }
        return prepared

    def train(self, data: dict[str, Prepared], ctx: RunContext) -> dict[str, Trained]:
        results = {}
        for entity, prepared in data.items():
            started = time.perf_counter()
            bar = tqdm(
                total=self.config.train.max_epochs,
                desc=f"AE {entity}",
                disable=not ctx.progress,
                leave=False,
            )

            def on_epoch(epoch: int, train: float, val: float, entity=entity, bar=bar) -> None:
                ctx.report.scalar(f"{entity}/train_loss", train, epoch)
                ctx.report.scalar(f"{entity}/val_loss", val, epoch)
                bar.update(1)
                bar.set_postfix(train=f"{train:.3f}", val=f"{val:.3f}")

            with bar:
                result = fit(
                    prepared.train,
                    prepared.valid,
                    prepared.shape,
                    self.config.train,
                    ctx.device,
                    ctx.torch_generator(),
                    on_epoch,
                    select=self.judged(prepared),
                )
            results[entity] = Trained(prepared.vocabulary, result)
            ctx.details[entity] = {
                "epochs": result.epochs,
                "best_epoch": result.best_epoch,
                "train_loss_curve": result.history["train_loss"],
                "val_loss_curve": result.history["val_loss"],
                "training_s": time.perf_counter() - started,
                "device": str(ctx.device),
            }
        return results

    def judged(self, prepared: Prepared) -> bool:
        return prepared.valid.shape[0] >= self.config.min_valid_to_judge

    def evaluate(self, model: dict[str, Trained], data, ctx: RunContext) -> dict:
        results = {entity: trained.result for entity, trained in model.items()}
        metrics = {
            entity: {
                "val_loss": result.best_val_loss,
                "untrained_val_loss": result.untrained_val_loss,
                "frequency_baseline_val_loss": frequency_baseline(
                    data[entity].train, data[entity].valid
                ),
                "train_loss": result.history["train_loss"][result.best_epoch - 1]
                if result.best_epoch
                else None,
                "best_epoch": result.best_epoch,
                "features": data[entity].shape.features,
                "valid_rows": data[entity].valid.shape[0],
                "judged_on_validation": self.judged(data[entity]),
            }
            for entity, result in results.items()
        }
        ctx.details.update(metrics)
        return metrics

    def validate_model(self, model: dict[str, Trained], metrics: dict, ctx) -> None:
        problems = []
        for entity, m in metrics.items():
            if not math.isfinite(m["val_loss"]):
                problems.append(f"{entity}: validation loss is not finite")
            elif m["judged_on_validation"] and m["val_loss"] >= min(
                m["frequency_baseline_val_loss"], m["untrained_val_loss"]
            ):
                problems.append(
                    f"{entity}: validation loss {m['val_loss']:.4f} does not beat the frequency"
                    f" baseline's {m['frequency_baseline_val_loss']:.4f} and the untrained"
                    f" network's {m['untrained_val_loss']:.4f}"
                )
        ctx.details["model_is_valid"] = not problems
        if problems:
            raise ModelValidationError("; ".join(problems))

    def package(self, model: dict[str, Trained], metrics: dict, ctx: RunContext) -> Artifact:
        tensors, config = {}, {}
        for entity, trained in model.items():
            autoencoder = trained.result.model
            tensors[entity] = {
                "state": {k: v.cpu() for k, v in autoencoder.state_dict().items()},
                "vocabulary": trained.vocabulary.to_state(),
            }
            config[entity] = autoencoder.shape.as_dict()
        return Artifact(AE_MODEL, tensors, config)


@dataclass(frozen=True)
class EmbeddingInput:
    autoencoders_version: int
    encoders: dict[str, EntityEncoder]
    raw: Raw


@dataclass(frozen=True)
class EmbeddingData:
    source: EmbeddingInput
    features: dict[str, sparse.csr_matrix]  # multi-hot rows aligned with source.raw[...].ids


@dataclass(frozen=True)
class EmbeddingTables:
    source: EmbeddingInput
    matrices: dict[str, np.ndarray]
    featured: dict[str, np.ndarray]


def encoders_from_autoencoders(stored: model_store.StoredModel) -> dict[str, EntityEncoder]:
    """The encoder half of each stored autoencoder, with its vocabulary."""
    encoders = {}
    for entity in ENTITIES:
        state = stored.tensors[entity]
        encoder_state = {
            key.removeprefix("encoder."): value
            for key, value in state["state"].items()
            if key.startswith("encoder.")
        }
        encoders[entity] = EntityEncoder(
            Vocabulary.from_state(state["vocabulary"]),
            Shape(**stored.config[entity]),
            encoder_state,
        )
    return encoders


class EmbeddingPipeline(Pipeline[EmbeddingInput, EmbeddingData, EmbeddingTables]):
    name = "Embedding"
    requires = (AE_MODEL,)

    def extract(self, ctx: RunContext) -> EmbeddingInput:
        stored = model_store.load(AE_MODEL)
        raw = read_every_entity(ctx)
        ctx.details["autoencoders_version"] = stored.version
        return EmbeddingInput(stored.version, encoders_from_autoencoders(stored), raw)

    def validate_data(self, raw: EmbeddingInput, ctx: RunContext) -> None:
        empty = [entity for entity, entities in raw.raw.items() if len(entities) == 0]
        if empty:
            raise DataValidationError(f"no {' and no '.join(empty)} in the catalogue")

    def prepare(self, raw: EmbeddingInput, ctx: RunContext) -> EmbeddingData:
        return EmbeddingData(
            raw,
            {
                entity: raw.encoders[entity].vocabulary.transform(entities.cols)
                for entity, entities in raw.raw.items()
            },
        )

    def train(self, data: EmbeddingData, ctx: RunContext) -> EmbeddingTables:
        matrices = {}
        for entity, matrix in data.features.items():
            started = time.perf_counter()
            matrices[entity] = data.source.encoders[entity].encode(matrix, device=ctx.device)
            ctx.details[f"{entity}_encoding_s"] = time.perf_counter() - started
        featured = {entity: np.diff(m.indptr) > 0 for entity, m in data.features.items()}
        return EmbeddingTables(data.source, matrices, featured)

    def evaluate(self, model: EmbeddingTables, data, ctx: RunContext) -> dict:
        metrics = {}
        for entity in ENTITIES:
            norms = np.linalg.norm(model.matrices[entity], axis=1)
            featured = model.featured[entity]
            metrics[entity] = {
                "count": len(norms),
                "with_features": int(featured.sum()),
                "dim": model.matrices[entity].shape[1],
                "max_norm_error": float(np.abs(norms[featured] - 1).max(initial=0.0)),
                "finite": bool(np.isfinite(model.matrices[entity]).all()),
            }
        ctx.details.update(metrics)
        return metrics

    def validate_model(self, model: EmbeddingTables, metrics: dict, ctx) -> None:
        problems = [
            f"{entity}: embeddings are not finite unit vectors"
            for entity, m in metrics.items()
            if not m["finite"] or m["max_norm_error"] > 1e-4
        ]
        if problems:
            raise ModelValidationError("; ".join(problems))

    def package(self, model: EmbeddingTables, metrics: dict, ctx: RunContext) -> Artifact:
        encoders = model.source.encoders
        ids = {entity: model.source.raw[entity].ids for entity in ENTITIES}
        config = {entity: encoders[entity].shape.as_dict() for entity in ENTITIES}
        config["autoencoders_version"] = model.source.autoencoders_version
        return Artifact(EMBEDDINGS_MODEL, emb.to_tensors(ids, model.matrices, encoders), config)


def train_ae(env: TrainingEnv, seed: int | None = None, progress: bool = False) -> PipelineOutcome:
    return AEPipeline().run(env, seed, progress)


def train_embeddings(
    env: TrainingEnv, seed: int | None = None, progress: bool = False
) -> PipelineOutcome:
    return EmbeddingPipeline().run(env, seed, progress)
