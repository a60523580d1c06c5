"""One JSON error shape for every 4xx, token auth on POST, and no 500 for client mistakes."""

from __future__ import annotations

import hmac
import logging

from flask import Flask, current_app, jsonify, request
from flask_restx import Api
from pymongo.errors import ConnectionFailure
from werkzeug.exceptions import HTTPException

from recommender.errors import ConflictError, InvalidInputError, UnavailableError

logger = logging.getLogger(__name__)
STORE_UNREACHABLE = "The database is unreachable; try again shortly"


DASHBOARD = "dashboard"  # its forms sign in with the token instead (recommender/dashboard/auth.py)


def check_token():
    token = current_app.config.get("RS_API_TOKEN")
    if not token or request.method != "POST" or request.blueprint == DASHBOARD:
        return None
    header = request.headers.get("Authorization", "")
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip(), token):
        response = jsonify(
            {"message": "A valid 'Authorization: Bearer <token>' header is required"}
        )
        response.status_code = 401
        response.headers["WWW-Authenticate"] = "Bearer"
        return response
    return None


def register_error_handlers(app: Flask, api: Api) -> None:
    app.before_request(check_token)

    @api.errorhandler(InvalidInputError)
    def invalid_input(error: InvalidInputError):
        return {"message": error.message, "errors": error.errors}, 400

    @api.errorhandler(ConflictError)
    def conflict(error: ConflictError):
        return {"message": error.message, **error.details}, 409

    @api.errorhandler(UnavailableError)
    def unavailable(error: UnavailableError):
        return {"message": str(error)}, 503

    @api.errorhandler(ConnectionFailure)
    def store_unreachable(error: ConnectionFailure):
        # Logged once, briefly: the client gets a clear 503, not a 500 with a traceback.
        logger.warning("The database is unreachable: %s", error)
        return {"message": STORE_UNREACHABLE}, 503

    @app.errorhandler(413)
    def too_large(_error):
        return jsonify({"message": too_large_message()}), 413

    @api.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        if error.code == 413:
            return {"message": too_large_message()}, 413
        return {"message": error.description or error.name}, error.code or 500


def too_large_message() -> str:
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    return f"Request body is larger than the limit of {limit} bytes (MAX_CONTENT_LENGTH)"
