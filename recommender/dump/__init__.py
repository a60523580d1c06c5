"""Marketplace dumps: validation, referential clean-up and atomic loading."""
