"""Scripted Marketplace journeys: recommendations and user actions, posted through the API."""

from __future__ import annotations

import datetime as dt
import uuid

from recommender.services.bookkeeping import writer

START = dt.datetime(2024, 2, 21, 12, 0, 0)


def stamp(minutes: float) -> str:
    """A Marketplace timestamp `minutes` after START (milliseconds, offset without a colon)."""
    moment = START + dt.timedelta(minutes=minutes)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"


def new_visit() -> str:
    return str(uuid.uuid4())


class Visitor:
    """One browser on the Marketplace (a logged-in user, or anonymous when `user_id` is "")."""

    def __init__(self, client, user_id: int | str = "", unique_id: str | None = None):
        self.client = client
        self.user_id = user_id
        self.unique_id = unique_id or str(uuid.uuid4())

    def recommend(self, minutes: float, candidates: list[int], panel: str = "v1") -> dict:
        """Ask for a panel on a fresh `/services` page view; returns the answer and its visit."""
        visit = new_visit()
        response = self.client.post(
            "/recommendations",
            json={
                "user_id": self.user_id,
                "unique_id": self.unique_id,
                "timestamp": stamp(minutes),
                "visit_id": visit,
                "page_id": "/services",
                "panel_id": panel,
                "engine_version": "Random",
                "candidates": candidates,
                "search_data": {},
                "client_id": "user_dashboard",  # nothing to publish on the databus
            },
        )
        assert response.status_code == 200, response.json
        writer.flush()
        return {**response.json, "visit_id": visit}

    def act(
        self,
        minutes: float,
        source: tuple[str, str],
        target_page: str,
        service: int | None = None,
        order: bool = False,
    ) -> tuple[str, str]:
        """One action from (visit, page) to a new page view; `service`: a panel click on it.
        Returns the new (visit, page)."""
        target = (new_visit(), target_page)
        body = {
            "user_id": self.user_id,
            "unique_id": self.unique_id,
            "timestamp": stamp(minutes),
            "client_id": "marketplace",
            "source": {"visit_id": source[0], "page_id": source[1]},
            "target": {"visit_id": target[0], "page_id": target[1]},
            "action": {"type": "button", "text": "Next", "order": order},
        }
        if service is not None:
            body["source"]["root"] = {
                "type": "recommendation-panel",
                "panel_id": "v1",
                "resource_type": "service",
                "resource_id": service,
            }
        response = self.client.post("/user_actions", json=body)
        assert response.status_code == 204, response.json
        return target
