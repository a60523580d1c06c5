"""The dashboard's blueprint, what a page is, and what every response gets."""

from __future__ import annotations

from dataclasses import dataclass

from flask import Blueprint, Response, render_template, request

blueprint = Blueprint(
    "dashboard",
    __name__,
    url_prefix="/dashboard",
    template_folder="templates",
    static_folder="static",
)
# Pages are text, forms and inline SVG: nothing to run, nothing from elsewhere.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)


@dataclass(frozen=True)
class Page:
    """An entry of the navigation bar."""

    title: str
    view: str  # the view function's name

    @property
    def endpoint(self) -> str:
        return f"{blueprint.name}.{self.view}"


def render(template: str, status: int = 200, **context) -> tuple[str, int]:
    return render_template(f"dashboard/{template}", **context), status


@blueprint.after_request
def headers(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    if request.endpoint != f"{blueprint.name}.static":
        response.headers["Cache-Control"] = "no-store"  # pages may show user ids
    return response


@blueprint.errorhandler(404)
def not_found(error):
    return render("error.html", 404, title="Not found", message=error.description)


@blueprint.errorhandler(400)
def bad_request(error):
    return render("error.html", 400, title="Bad request", message=error.description)
