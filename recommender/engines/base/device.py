"""The device training runs on: TRAINING_DEVICE ("cpu" or "cuda"), cpu when no GPU is present."""

from __future__ import annotations

import logging

import torch

logger = logging.getLogger(__name__)


def training_device(name: str | None) -> torch.device:
    """The device `name` names; cuda falls back to cpu (with a warning) without a GPU."""
    wanted = (name or "cpu").strip().lower()
    if wanted.startswith("cuda"):
        if torch.cuda.is_available():
            return torch.device(wanted)
        logger.warning("TRAINING_DEVICE=%s but no GPU is available: training on cpu", wanted)
    return torch.device("cpu")
