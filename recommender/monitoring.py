"""Sentry error reporting, on only when SENTRY_DSN is set. No personal identifier is ever sent.

Identifiers (`aai_uid`, `user_id`, `unique_id`, `user`) are removed three ways before an event
leaves the process: under those keys anywhere in the event (request body, extra and Celery task
arguments, contexts, breadcrumbs, stack-frame variables, spans); written as `key=value` or
`"key": value` inside any text (exception messages, reprs of local variables); and wherever a
value found under those keys (in the event or in the current request) appears in any text.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from flask import has_request_context, request

FILTERED = "[Filtered]"
PERSONAL_KEYS = frozenset({"aai_uid", "user_id", "unique_id", "user"})
# `user_id=12`, `'aai_uid': 'a@b'`, `"unique_id": "..."`: the value after one of the keys.
PERSONAL_IN_TEXT = re.compile(
    r"""(?P<key>\b(?:aai_uid|user_id|unique_id)['"]?\s*[=:]\s*)"""
    r"""(?P<value>'[^']*'|"[^"]*"|[^\s,;)}\]]+)"""
)
# A request body larger than this is not parsed again just to find identifiers in it.
MAX_SCANNED_BODY = 1024 * 1024


def personal_values(data: Any) -> Iterator[str]:
    """The values stored under personal keys anywhere in `data`, as text."""
    if isinstance(data, Mapping):
        for key, value in data.items():
            if isinstance(key, str) and key.lower() in PERSONAL_KEYS:
                if value not in (None, "", FILTERED) and not isinstance(value, dict | list):
                    yield str(value).strip("'\"")  # frame variables arrive as reprs
            else:
                yield from personal_values(value)
    elif isinstance(data, list):
        for item in data:
            yield from personal_values(item)


def request_identifiers() -> set[str]:
    """The personal values the current request carried (JSON body and query string)."""
    if not has_request_context():
        return set()
    values = set(personal_values(request.args.to_dict()))
    size = request.content_length
    if request.is_json and size is not None and size <= MAX_SCANNED_BODY:
        values.update(personal_values(request.get_json(silent=True)))
    return values


def value_pattern(values: Iterable[str]) -> re.Pattern | None:
    """Matches any of `values` as a whole token (`12` matches in "user 12", not in "123")."""
    alternatives = sorted({re.escape(v) for v in values if v}, key=len, reverse=True)
    if not alternatives:
        return None
    return re.compile(rf"(?<!\w)(?:{'|'.join(alternatives)})(?!\w)")


def scrub_text(text: str, values: re.Pattern | None) -> str:
    text = PERSONAL_IN_TEXT.sub(rf"\g<key>{FILTERED}", text)
    return values.sub(FILTERED, text) if values is not None else text


def scrub(value: Any, values: re.Pattern | None = None) -> Any:
    """A copy of `value` (a serialized event or part of one) without personal identifiers."""
    if isinstance(value, dict):
        return {
            key: FILTERED
            if isinstance(key, str) and key.lower() in PERSONAL_KEYS
            else scrub(item, values)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [scrub(item, values) for item in value]
    if isinstance(value, str):
        return scrub_text(value, values)
    if isinstance(value, int | float) and not isinstance(value, bool) and values is not None:
        return FILTERED if values.fullmatch(str(value)) else value
    return value


def before_send(event: dict, _hint: dict) -> dict:
    """Sentry's last look at an error or transaction: drop the user, scrub everything else.

    Sentry's own scrubber (passwords, tokens, cookies) has run before; the personal keys are left
    to this hook so that their values can first be collected and then removed from all text.
    An exception here makes Sentry drop the event: it fails closed.
    """
    event.pop("user", None)
    found = set(personal_values(event)) | request_identifiers()
    return scrub(event, value_pattern(found))


def init_sentry(
    config: Mapping[str, Any] | None = None, with_celery: bool = False, **options: Any
) -> bool:
    """Start Sentry with the Flask (and Celery) integrations; False when no DSN is configured.

    Once per process: a later call (create_app() in the worker, after worker.py started Sentry
    with Celery) keeps the running client. `options` go to `sentry_sdk.init` (tests pass a
    `transport`).
    """
    if config is None:
        from recommender.settings import flask_config, load_settings

        config = flask_config(load_settings())
    if not config.get("SENTRY_DSN"):
        return False
    import sentry_sdk
    from sentry_sdk.integrations.flask import FlaskIntegration

    if sentry_sdk.get_client().is_active():
        return True
    integrations: list = [FlaskIntegration()]
    if with_celery:
        from sentry_sdk.integrations.celery import CeleryIntegration

        integrations.append(CeleryIntegration())
    sentry_sdk.init(
        dsn=config["SENTRY_DSN"],
        environment=config.get("SENTRY_ENVIRONMENT"),
        release=config.get("SENTRY_RELEASE"),
        traces_sample_rate=config.get("SENTRY_TRACES_SAMPLE_RATE", 0.0),
        send_default_pii=False,
        before_send=before_send,
        before_send_transaction=before_send,
        integrations=integrations,
        **options,
    )
    return True
