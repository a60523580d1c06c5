"""`POST /update` and `GET /update/<task_id>`: an update task as clients see it (the dump's own
schema is recommender.dump.schema)."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class UpdateTaskView(BaseModel):
    model_config = ConfigDict(title="Update task")
    task_id: str
    status: Literal["queued", "running", "succeeded", "failed", "refused"] = Field(
        description="`refused`: the dump guard kept the live catalogue (see `reason`)"
    )
    step: str | None = Field(None, description="What a running (or waiting) update is doing now")
    reason: str | None = Field(None, description="Why it failed or was refused")
    report: dict[str, Any] = Field(
        default_factory=dict,
        description=(
            "Entities loaded, dangling references dropped, each training outcome; the guard's "
            "numbers when refused"
        ),
    )
    created_at: dt.datetime | None = None
    started_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None

    def as_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")
