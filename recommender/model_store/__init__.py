"""Trained models: versions in GridFS (`versions`) and the per-process cache of the inference
components built from the live ones (`cache`)."""
