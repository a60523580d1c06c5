"""The RL engine: TD3 actors (panel v1: 3 services, v2: 2) over user sessions (SARS)."""
