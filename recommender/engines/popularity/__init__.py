"""Popularity: what Marketplace users order and click, weighted toward the search context."""
