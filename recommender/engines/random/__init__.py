"""Random engines: the floor that always answers, with no model."""
