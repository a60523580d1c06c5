"""The STOMP databus: user actions in (`flask subscribe`), served recommendations out."""

from recommender.databus.publisher import publish_pending, run_publisher
from recommender.databus.subscriber import (
    Subscriber,
    SubscriberOptions,
    run_subscriber,
    start_subscriber_thread,
)

__all__ = [
    "Subscriber",
    "SubscriberOptions",
    "publish_pending",
    "run_publisher",
    "run_subscriber",
    "start_subscriber_thread",
]
