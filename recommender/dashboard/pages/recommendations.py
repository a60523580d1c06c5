"""Recommendations: look up a user (id or aai_uid) or a visit, and see what was served, by
which engine, and what was clicked next on that page."""

from __future__ import annotations

from flask import request

from recommender.dashboard.blueprint import Page, blueprint, render
from recommender.errors import InvalidInputError
from recommender.services.dashboard.lookup import KINDS, lookup

PAGE = Page("Recommendations", "recommendations")


@blueprint.get("/recommendations")
def recommendations():
    kind = request.args.get("kind", "user")
    value = request.args.get("q", "")
    context = {"title": "Recommendations", "kinds": KINDS, "kind": kind, "q": value}
    if not value.strip():
        return render("recommendations.html", **context)
    try:
        found = lookup(kind, value)
    except InvalidInputError as error:
        return render("recommendations.html", 400, errors=error.errors, **context)
    return render("recommendations.html", found=found, **context)
