"""The dashboard's pages, one module each (importing one registers its routes). A new page is
one more module here and one more entry of NAVIGATION."""

from flask import request

from recommender.dashboard.blueprint import blueprint
from recommender.dashboard.pages import experiments, overview, recommendations, training

NAVIGATION = (overview.PAGE, training.PAGE, experiments.PAGE, recommendations.PAGE)


@blueprint.context_processor
def navigation() -> dict:
    return {"pages": NAVIGATION, "current_endpoint": request.endpoint}
