"""Versioned model storage: state dicts (`torch.save`) in GridFS plus the config that rebuilds them.

A training run saves a *candidate*; validation then promotes it (it becomes the one live version,
and serving processes pick it up through the model stamp) or rejects it (the previous version keeps
serving). Only tensors, lists, numbers and strings are stored, and loading uses
`weights_only=True`: no pickled code objects.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Any

import torch

from recommender.models.ops import ModelVersion
from recommender.store import get_fs, stamps

LIVE, CANDIDATE, SUPERSEDED, REJECTED = "live", "candidate", "superseded", "rejected"


class NoModelError(LookupError):
    """No live (or no such) version of a model."""


@dataclass(frozen=True)
class StoredModel:
    name: str
    version: int
    tensors: dict[str, Any]
    config: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)


def stamp_name(name: str) -> str:
    return f"model:{name}"


def _next_version(name: str) -> int:
    latest = ModelVersion.objects(name=name).order_by("-version").only("version").first()
    return 1 if latest is None else latest.version + 1


def save_candidate(
    name: str,
    tensors: dict[str, Any],
    config: dict | None = None,
    metrics: dict | None = None,
    pipeline_metadata=None,
) -> ModelVersion:
    """Store `tensors` (a state dict, possibly nested) as a new candidate version of `name`."""
    buffer = io.BytesIO()
    torch.save(tensors, buffer)
    payload = buffer.getvalue()
    version = _next_version(name)
    file_id = get_fs().put(payload, filename=f"{name}-v{version}.pt")
    try:
        return ModelVersion(
            name=name,
            version=version,
            status=CANDIDATE,
            config=config or {},
            metrics=metrics or {},
            file_id=file_id,
            size_bytes=len(payload),
            pipeline_metadata=getattr(pipeline_metadata, "id", pipeline_metadata),
        ).save()
    except Exception:  # no orphaned weights: the file goes with the failed record
        get_fs().delete(file_id)
        raise


def promote(model: ModelVersion, keep: int = 3) -> None:
    """Make `model` the live version of its name, then drop files of versions beyond `keep`."""
    ModelVersion.objects(name=model.name, status=LIVE, version__ne=model.version).update(
        set__status=SUPERSEDED
    )
    model.status = LIVE
    model.save()
    _changed(model.name)
    prune(model.name, keep)


def reject(model: ModelVersion, reason: str) -> None:
    """Record why `model` did not go live and free its weights; the live version is untouched."""
    model.status = REJECTED
    model.metrics = {**model.metrics, "rejection_reason": reason}
    _delete_file(model)
    model.save()


def prune(name: str, keep: int) -> None:
    """Keep the newest `keep` versions of `name` that have weights; delete older files and rows."""
    kept = 0
    for model in ModelVersion.objects(name=name, file_id__ne=None).order_by("-version"):
        if model.status == LIVE or kept < keep:
            kept += 1
            continue
        _delete_file(model)
        model.delete()


def _delete_file(model: ModelVersion) -> None:
    if model.file_id is not None:
        get_fs().delete(model.file_id)
        model.file_id = None


def live_version(name: str) -> ModelVersion | None:
    return ModelVersion.objects(name=name, status=LIVE).order_by("-version").first()


def load(name: str, version: int | None = None) -> StoredModel:
    """The live version of `name` (or `version`), read from GridFS with `weights_only=True`."""
    if version is None:
        model = live_version(name)
    else:
        model = ModelVersion.objects(name=name, version=version).first()
    if model is None or model.file_id is None:
        raise NoModelError(f"No stored model {name!r}" + (f" v{version}" if version else ""))
    data = get_fs().get(model.file_id).read()
    tensors = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    return StoredModel(model.name, model.version, tensors, dict(model.config), dict(model.metrics))


def drop_all() -> int:
    """Delete every model version and its weights; serving falls back to untrained engines."""
    fs = get_fs()
    names = set()
    for model in ModelVersion.objects.only("name", "file_id"):
        names.add(model.name)
        if model.file_id is not None:
            fs.delete(model.file_id)
    deleted = ModelVersion.objects.delete()
    for name in names:
        _changed(name)
    return deleted


def _changed(name: str) -> None:
    """Tell every serving process (this one at once) that `name` changed."""
    stamps.bump(stamp_name(name))
