"""Offline and online evaluation: ranking metrics, statistics, exploration and off-policy
estimators (pure numpy: no app, no database)."""
