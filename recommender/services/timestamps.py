"""Timestamps as clients send them, to what MongoDB stores (naive UTC)."""

from __future__ import annotations

import datetime as dt

from dateutil import parser as dateparser


def parse_client_timestamp(text: str) -> dt.datetime:
    """ISO 8601 in every shape clients send (`...512+0100`, `...Z`, `...+01:00`) -> naive UTC;
    ValueError when it is none of them."""
    try:
        try:
            parsed = dt.datetime.fromisoformat(text)  # in C: ~25 times faster than dateutil
        except ValueError:
            parsed = dateparser.isoparse(text)
        if parsed.tzinfo is not None:  # may overflow, e.g. 9999-12-31T23:59:59-10:00
            parsed = parsed.astimezone(dt.UTC).replace(tzinfo=None)
    except OverflowError as error:
        raise ValueError(str(error)) from None
    return parsed
