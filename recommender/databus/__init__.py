"""The STOMP databus: user actions in (`flask subscribe`), served recommendations out."""

from recommender.databus.publisher import publish_recommendation
from recommender.databus.subscriber import (
    Subscriber,
    SubscriberOptions,
    run_subscriber,
    start_subscriber_thread,
)

__all__ = [
    "Subscriber",
    "SubscriberOptions",
    "publish_recommendation",
    "run_subscriber",
    "start_subscriber_thread",
]
