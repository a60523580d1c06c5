"""Overview: the health tree, the served engines and their live models, the last update and the
traffic of the last hour and day."""

from __future__ import annotations

import time

from recommender.dashboard.blueprint import Page, blueprint, render
from recommender.services.dashboard.overview import HEALTH_MAX_AGE_S
from recommender.services.dashboard.overview import overview as overview_data
from recommender.services.traffic import OUTCOMES

PAGE = Page("Overview", "overview")


@blueprint.get("/")
def overview():
    data = overview_data()
    return render(
        "overview.html",
        title="Overview",
        data=data,
        age=f"{max(0.0, time.time() - data.health.checked_at):.0f} s",
        max_age=f"{HEALTH_MAX_AGE_S:.0f}",
        outcomes=OUTCOMES,
    )
