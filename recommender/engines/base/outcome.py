"""The result of one training pipeline run, as the update task and the CLI report it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Literal

Status = Literal["promoted", "rejected", "failed", "skipped"]


@dataclass
class PipelineOutcome:
    pipeline: str
    status: Status
    reason: str | None = None
    model_version: int | None = None
    metrics: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status in ("promoted", "skipped")

    def as_dict(self) -> dict:
        return asdict(self)
