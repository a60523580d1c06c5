"""Sentry: on only with a DSN, Flask and Celery integrations, and no personal identifier sent.

Events are captured by a transport that keeps envelopes in memory: nothing leaves the process.
"""

from __future__ import annotations

import json
import logging
import uuid

import pytest
import sentry_sdk
from sentry_sdk.envelope import Envelope
from sentry_sdk.integrations.celery import CeleryIntegration
from sentry_sdk.integrations.flask import FlaskIntegration
from sentry_sdk.transport import Transport

from recommender.monitoring import FILTERED, init_sentry, scrub, scrub_text, value_pattern

DSN = "https://public@sentry.invalid/1"
AAI_UID = f"jane.doe.{uuid.uuid4().hex[:8]}@egi.eu"
USER_ID = 918273
UNIQUE_ID = str(uuid.uuid4())
PERSONAL = (AAI_UID, str(USER_ID), UNIQUE_ID)
SETTINGS = {
    "SENTRY_DSN": DSN,
    "SENTRY_ENVIRONMENT": "staging",
    "SENTRY_RELEASE": "recommender@1.2.3",
    "SENTRY_TRACES_SAMPLE_RATE": 1.0,
}


class CaptureTransport(Transport):
    """Keeps every envelope instead of sending it."""

    def __init__(self) -> None:
        super().__init__()
        self.envelopes: list[Envelope] = []

    def capture_envelope(self, envelope: Envelope) -> None:
        self.envelopes.append(envelope)

    def items(self, kind: str) -> list[dict]:
        return [
            item.payload.json
            for envelope in self.envelopes
            for item in envelope.items
            if item.type == kind and item.payload.json is not None
        ]


def close_sentry() -> None:
    sentry_sdk.get_client().close()
    sentry_sdk.get_global_scope().set_client(None)


@pytest.fixture
def sentry_capture():
    transport = CaptureTransport()
    yield transport
    close_sentry()


def recommendation_request() -> dict:
    return {
        "user_id": USER_ID,
        "aai_uid": AAI_UID,
        "unique_id": UNIQUE_ID,
        "timestamp": "2024-02-21T15:19:43.512+0100",
        "visit_id": str(uuid.uuid4()),
        "page_id": "/services",
        "panel_id": "v1",
        "search_data": {},
    }


def failing_recommend(body: bytes | str | dict):
    payload = body if isinstance(body, dict) else json.loads(body)
    user_id, aai_uid = payload["user_id"], payload["aai_uid"]  # locals Sentry records
    logging.getLogger("recommender").warning("Recommending for %s", aai_uid)  # a breadcrumb
    raise RuntimeError(f"No panel for {aai_uid} (user {user_id}, browser {payload['unique_id']})")


def assert_no_personal_values(items: list[dict]) -> None:
    text = json.dumps(items)
    for value in PERSONAL:
        assert value not in text


def test_without_dsn_sentry_stays_off():
    assert init_sentry({"SENTRY_DSN": None}) is False
    assert not sentry_sdk.get_client().is_active()


def test_request_error_reaches_sentry_without_identifiers(sentry_capture, monkeypatch):
    from recommender import create_app
    from recommender.services import recommendations

    assert init_sentry(SETTINGS, transport=sentry_capture)
    monkeypatch.setattr(recommendations, "recommend", failing_recommend)
    # Production error handling: the client gets a 500, the error goes to Sentry.
    app = create_app("testing", MONGODB_HOST="mongomock", PROPAGATE_EXCEPTIONS=False, **SETTINGS)
    response = app.test_client().post("/recommendations", json=recommendation_request())
    sentry_sdk.flush()

    assert response.status_code == 500
    (event,) = sentry_capture.items("event")
    assert event["environment"] == "staging"
    assert event["release"] == "recommender@1.2.3"
    (exception,) = event["exception"]["values"]
    assert exception["type"] == "RuntimeError"
    assert FILTERED in exception["value"]
    body = event["request"]["data"]
    assert body["aai_uid"] == body["user_id"] == body["unique_id"] == FILTERED
    assert body["page_id"] == "/services"  # the rest of the request stays useful
    messages = [crumb.get("message") or "" for crumb in event["breadcrumbs"]["values"]]
    assert any(message.startswith("Recommending for") for message in messages)
    assert "user" not in event
    assert_no_personal_values([event])
    # Performance traces of the same request are scrubbed too.
    assert sentry_capture.items("transaction")
    assert_no_personal_values(sentry_capture.items("transaction"))


def test_celery_task_error_reaches_sentry_without_identifiers(sentry_capture, app):
    from recommender.celery_app import celery

    assert init_sentry(SETTINGS, with_celery=True, transport=sentry_capture)

    @celery.task(name=f"tests.monitoring.fail.{uuid.uuid4().hex}")
    def publish(context: dict) -> None:
        raise ValueError(f"Cannot publish for {context['aai_uid']}")

    publish.apply_async(args=[recommendation_request()])
    sentry_sdk.flush()

    events = sentry_capture.items("event")
    assert [e["exception"]["values"][-1]["type"] for e in events] == ["ValueError"]
    assert_no_personal_values(events)


def test_a_second_init_keeps_the_worker_client(sentry_capture):
    # worker.py starts Sentry with Celery, then create_app() asks again without it.
    assert init_sentry(SETTINGS, with_celery=True, transport=sentry_capture)
    assert init_sentry({**SETTINGS, "SENTRY_ENVIRONMENT": "other"})
    client = sentry_sdk.get_client()
    assert client.get_integration(CeleryIntegration) is not None
    assert client.get_integration(FlaskIntegration) is not None
    assert client.options["environment"] == "staging"
    assert client.options["traces_sample_rate"] == 1.0
    assert client.options["send_default_pii"] is False


@pytest.mark.parametrize(
    "text",
    [
        f"RecommendationContext(user_id={USER_ID}, unique_id='{UNIQUE_ID}', panel_id='v1')",
        json.dumps({"aai_uid": AAI_UID, "page_id": "/services"}),
        str({"user_id": USER_ID, "aai_uid": AAI_UID}),
    ],
)
def test_identifiers_written_as_key_and_value_are_removed_from_text(text):
    scrubbed = scrub_text(text, None)
    assert FILTERED in scrubbed
    assert_no_personal_values([scrubbed])


def test_request_values_are_removed_as_whole_tokens_only():
    pattern = value_pattern([str(USER_ID), AAI_UID])
    event = {"message": f"user {USER_ID} ({AAI_UID}) saw 3 of {USER_ID}0 services", "n": USER_ID}
    scrubbed = scrub(event, pattern)
    assert scrubbed["message"] == f"user {FILTERED} ({FILTERED}) saw 3 of {USER_ID}0 services"
    assert scrubbed["n"] == FILTERED
