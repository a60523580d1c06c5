"""The MongoDB store every role shares: the connection (a real server, or the embedded
in-process store for the demo and tests), GridFS, version stamps and leases."""

from recommender.store.connection import connect_db, get_db, get_fs, id_list, is_embedded

__all__ = ["connect_db", "get_db", "get_fs", "id_list", "is_embedded"]
