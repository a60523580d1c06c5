"""The HTTP API (flask-restx): namespaces, auth, error shapes, Swagger at `/`."""

from __future__ import annotations

from flask import Flask
from flask_restx import Api

from recommender.api.errors import register_error_handlers
from recommender.api.evaluation import ns as evaluation_ns
from recommender.api.experiments import ns as experiments_ns
from recommender.api.health import ns as health_ns
from recommender.api.json_output import use_orjson
from recommender.api.metrics import init_metrics
from recommender.api.openapi import LinkedApi
from recommender.api.recommendations import ns as recommendations_ns
from recommender.api.update import LINKS as UPDATE_LINKS
from recommender.api.update import ns as update_ns
from recommender.api.user_actions import ns as user_actions_ns

AUTHORIZATIONS = {"bearer": {"type": "apiKey", "in": "header", "name": "Authorization"}}


def init_api(app: Flask) -> Api:
    api = LinkedApi(
        links=UPDATE_LINKS,
        version="1.0",
        title="Recommender system API",
        description=(
            "Recommendations of research services for the Marketplace. "
            "When RS_API_TOKEN is set, every POST needs `Authorization: Bearer <token>`."
        ),
        doc="/",
        authorizations=AUTHORIZATIONS,
        security="bearer",
    )
    use_orjson(api)
    namespaces = (
        recommendations_ns,
        user_actions_ns,
        update_ns,
        experiments_ns,
        evaluation_ns,
        health_ns,
    )
    for namespace in namespaces:
        api.add_namespace(namespace, path=f"/{namespace.name}")
    api.init_app(app)
    init_metrics(app)
    register_error_handlers(app, api)
    return api
