"""Symbolic and numeric rewards of user actions (the page-transition table, read once).

A user action moves a visitor from `source.page_id` to `target.page_id`. Both pages are first
abstracted (`abstract_page`): the concrete service in a path does not matter, only which kind of
page it is. The symbolic reward is the cell of `transition_rewards.csv` for (source, target),
or `order` when the action is an order.

Deviation from the original table: an ordering action is worth `order` from every page (the
original only rewarded orders made from the summary page or an unknown page, so an order placed
from e.g. the offers page was worth nothing).

Numeric values: order 1.0, interest 0.7, mild_interest 0.3, anything else 0. A recommended
service is worth the best symbol of its journey; a recommendation (K services) is worth the
root mean square of its K values, in [0, 1].
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from functools import cache, lru_cache
from importlib import resources
from urllib.parse import urlsplit

import numpy as np

ORDER = "order"
UNKNOWN_PAGE = "unknown_page_id"
UNKNOWN_TRANSITION = "unknown_transition"
LIST_PAGE = "/services"
SERVICE_PAGE = "/services/{id}"
COMPARISONS = "/comparisons"
REWARD_VALUES: dict[str, float] = {
    ORDER: 1.0,
    "interest": 0.7,
    "mild_interest": 0.3,
    "simple_transition": 0.0,
    UNKNOWN_TRANSITION: 0.0,
    "exit": 0.0,
}
# First path segments of the service list: the Marketplace's `/services` and the `/service`
# page id it sends for its list panel.
LIST_SEGMENTS = frozenset({"services", "service"})


@cache
def transition_table() -> dict[tuple[str, str], str]:
    """(abstract source page, abstract target page or `order`) -> symbol, read once."""
    text = resources.files(__package__).joinpath("transition_rewards.csv").read_text()
    rows = list(csv.reader(text.splitlines()))
    targets = rows[0][1:]
    return {
        (row[0], target): cell
        for row in rows[1:]
        for target, cell in zip(targets, row[1:], strict=True)
    }


@cache
def service_subpages() -> frozenset[str]:
    """The `<sub>` of every `/services/{id}/<sub>` page the table knows."""
    prefix = SERVICE_PAGE + "/"
    return frozenset(src[len(prefix) :] for src, _ in transition_table() if src.startswith(prefix))


@lru_cache(maxsize=1 << 16)  # page ids repeat a lot; slugs make them unbounded
def abstract_page(page_id: str | None) -> str:
    """The table's name for a concrete page id.

    `/services`, `/service` and category listings `/services/c/<slug>` -> `/services`;
    `/services/<id or slug>` -> `/services/{id}`; `/services/<x>/<sub>[/...]` ->
    `/services/{id}/<sub>` when the table knows `<sub>`; `/comparisons[/...]` -> `/comparisons`;
    anything else (including ids such as `services_catalogue_list`) -> `unknown_page_id`.
    Query strings, fragments, a scheme and host, and trailing slashes are ignored.
    """
    if not page_id:
        return UNKNOWN_PAGE
    parts = [part for part in urlsplit(page_id.strip()).path.split("/") if part]
    if not parts:
        return UNKNOWN_PAGE
    if parts[0] == "comparisons":
        return COMPARISONS
    if parts[0] not in LIST_SEGMENTS:
        return UNKNOWN_PAGE
    if len(parts) == 1 or parts[1] == "c":
        return LIST_PAGE
    if len(parts) == 2:
        return SERVICE_PAGE
    if parts[2] in service_subpages():
        return f"{SERVICE_PAGE}/{parts[2]}"
    return UNKNOWN_PAGE


def symbol(source_page: str | None, target_page: str | None, order: bool) -> str:
    """The symbolic reward of one action."""
    source = abstract_page(source_page)
    target = ORDER if order else abstract_page(target_page)
    return transition_table().get((source, target), UNKNOWN_TRANSITION)


def service_value(symbols: Iterable[str]) -> float:
    """A recommended service's value: its best symbol (0 for no journey)."""
    return max((REWARD_VALUES.get(s, 0.0) for s in symbols), default=0.0)


def service_values(reward: Sequence[Sequence[str]]) -> np.ndarray:
    """Per recommended service, its value (a SARS `reward` field -> float32 [K])."""
    return np.fromiter((service_value(s) for s in reward), dtype=np.float32, count=len(reward))


def combine(values: np.ndarray) -> np.ndarray:
    """Root mean square over the last axis: K service values -> one recommendation reward."""
    values = np.asarray(values, dtype=np.float32)
    if values.shape[-1] == 0:
        return np.zeros(values.shape[:-1], dtype=np.float32)
    return np.sqrt(np.mean(np.square(values), axis=-1))
