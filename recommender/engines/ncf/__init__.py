"""NCF: neural collaborative filtering (GMF + MLP over ids, plus a content branch)."""
