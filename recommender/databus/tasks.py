"""The periodic Celery task sending stored recommendations to the databus (Celery beat runs it
every RS_DATABUS_PUBLISH_INTERVAL seconds; see recommender.celery_app)."""

from __future__ import annotations

from recommender.celery_app import PUBLISH_TASK, celery
from recommender.databus.publisher import publish_pending
from recommender.services.runtime import runtime


@celery.task(name=PUBLISH_TASK, ignore_result=True)
def publish_recommendations() -> int:
    """Send what waits in the outbox; a broker failure leaves it there for the next run."""
    settings = runtime().settings
    if not settings.RS_DATABUS_ENABLED:
        return 0
    return publish_pending(settings)
