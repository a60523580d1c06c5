"""Autoencoders over content features, and the user and service embeddings they produce."""
