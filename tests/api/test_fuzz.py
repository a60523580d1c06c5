"""Property-based fuzzing of the operations in the app's own OpenAPI spec: never a 5xx.

schemathesis generates requests that fit the schema (positive) and requests that break it
(negative) and sends them through the WSGI app. A catalogue is loaded and Popularity trained
so that generated requests reach the engines, not only the validation.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.generation.modes import GenerationMode

from recommender.engines.popularity.pipeline import train as train_popularity
from recommender.services.bookkeeping import writer
from tests.api.helpers import load
from tests.app_helpers import env, use_stages

pytestmark = pytest.mark.slow

# Examples per operation: most for the endpoint under test, fewer for the others.
EXAMPLES = {("POST", "/recommendations"): 80}
OTHER_EXAMPLES = 25


@pytest.fixture
def schema(app, monkeypatch):
    load()
    train_popularity(env())
    # A generated valid dump would otherwise train every model inside the request.
    use_stages(monkeypatch, {})
    loaded = schemathesis.openapi.from_wsgi("/swagger.json", app)
    yield loaded
    writer.flush()


def operations(schema) -> list:
    # GET /health answers 503 by contract when something is DOWN; it takes no input to fuzz.
    found = [result.ok() for result in schema.exclude(path="/health").get_all_operations()]
    assert {(op.method.upper(), op.path) for op in found} >= {("POST", "/recommendations")}
    return found


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_generated_request_gets_a_server_error(schema, mode):
    for operation in operations(schema):

        @settings(
            max_examples=EXAMPLES.get((operation.method.upper(), operation.path), OTHER_EXAMPLES),
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy(generation_mode=mode))
        def check(case):
            response = case.call()
            assert response.status_code < 500, (
                f"{case.method} {case.path} -> {response.status_code}: {case.body!r}"
            )

        check()
