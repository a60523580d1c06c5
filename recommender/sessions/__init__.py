"""User sessions to SARS for the RL engine: journeys, rewards, incremental regeneration."""

from recommender.sessions.regenerate import regenerate_sarses

__all__ = ["regenerate_sarses"]
