"""The device training runs on: `TRAINING_DEVICE` ("cpu" or "cuda"), cpu when no GPU is present."""

from __future__ import annotations

import logging
import os

import torch
from flask import current_app, has_app_context

logger = logging.getLogger(__name__)


def training_device(name: str | None = None) -> torch.device:
    """`name`, else the app's TRAINING_DEVICE, else the environment's; cuda falls back to cpu."""
    if name is None:
        name = (
            current_app.config.get("TRAINING_DEVICE")
            if has_app_context()
            else os.environ.get("TRAINING_DEVICE")
        )
    wanted = (name or "cpu").strip().lower()
    if wanted.startswith("cuda"):
        if torch.cuda.is_available():
            return torch.device(wanted)
        logger.warning("TRAINING_DEVICE=%s but no GPU is available: training on cpu", wanted)
    return torch.device("cpu")
