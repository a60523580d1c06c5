"""Celery task sending one served recommendation to the databus."""

from __future__ import annotations

import logging
import random

from stomp.exception import StompException

from recommender.broker import BusSettings
from recommender.celery_app import celery
from recommender.databus.publisher import (
    PUBLISH_DROPPED,
    PUBLISH_RETRIES,
    PUBLISHED,
    PublishError,
    channel,
    recommendation_message,
)
from recommender.services.runtime import runtime

logger = logging.getLogger(__name__)
MAX_RETRIES = 8  # back-off 1, 2, 4 ... 60 s: about 4 minutes of broker outage
RETRYABLE = (StompException, PublishError, OSError)


def retry_delay(retries: int) -> float:
    return min(60.0, 2.0**retries) * random.uniform(0.8, 1.2)


@celery.task(bind=True, max_retries=MAX_RETRIES, ignore_result=True)
def send_recommendation_to_databus(self, context: dict, response: dict) -> None:
    """Publish `{"recommender_system", "context", "response"}` to RS_DATABUS_PUBLISH_TOPIC."""
    settings = runtime().settings
    try:
        channel.send(
            BusSettings.of(settings),
            settings.databus()["RS_DATABUS_PUBLISH_TOPIC"],
            recommendation_message(context, response),
        )
    except RETRYABLE as error:
        # Eagerly run (demo, mongomock) a retry would recurse at once: give up instead.
        if self.request.is_eager or self.request.retries >= self.max_retries:
            PUBLISH_DROPPED.labels("gave_up").inc()
            logger.error("Giving up publishing a recommendation to the databus: %s", error)
            raise
        logger.warning("Publishing to the databus failed (%s); retrying", error)
        PUBLISH_RETRIES.inc()
        raise self.retry(exc=error, countdown=retry_delay(self.request.retries)) from None
    PUBLISHED.inc()
