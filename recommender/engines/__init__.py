"""Recommendation engines: each has a training pipeline and an inference component."""
