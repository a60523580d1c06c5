"""`GET /health`: the service's checks as a tree; 503 when anything is DOWN."""

from __future__ import annotations

from flask_restx import Namespace, Resource

from recommender.services.health import health

ns = Namespace("health", description="Liveness of the database, worker, databus and engines")


@ns.route("")
class Health(Resource):
    @ns.response(200, "Everything is UP")
    @ns.response(503, "Something is DOWN; the tree says what")
    def get(self):
        return health()
