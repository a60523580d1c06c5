"""Use cases that orchestrate the models, engines and tasks (the API and CLI call these)."""
