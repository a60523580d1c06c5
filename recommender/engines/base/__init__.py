"""What every engine shares: the training outcome type and the inference interface."""
