"""The dump guard: a dump that would empty or gut the live catalogue is refused before loading.

A broken export (every list empty, a truncated file) is valid JSON of the right shape; loaded,
it would leave every engine without data. The guard compares the dump with what is live: it
refuses one without a recommendable service, or one removing more than a share of the live
recommendable services or of the users. The first dump into an empty store is never refused.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from recommender.models.marketplace import RECOMMENDABLE_STATUSES, Service, User
from recommender.store import get_db


@dataclass(frozen=True)
class Sizes:
    recommendable_services: int
    users: int


@dataclass(frozen=True)
class GuardReport:
    live: Sizes
    dump: Sizes
    removed: Sizes  # live ones the dump does not hold
    max_removed_share: float
    problems: tuple[str, ...]  # empty: the dump may be loaded

    def as_dict(self) -> dict:
        return {
            "live": asdict(self.live),
            "dump": asdict(self.dump),
            "removed": asdict(self.removed),
            "max_removed_share": self.max_removed_share,
            "problems": list(self.problems),
        }


def _live_ids() -> tuple[set[int], set[int]]:
    db = get_db()
    services = db[Service._get_collection_name()].find(
        {"status": {"$in": list(RECOMMENDABLE_STATUSES)}}, {"_id": 1}
    )
    users = db[User._get_collection_name()].find({}, {"_id": 1})
    return {doc["_id"] for doc in services}, {doc["_id"] for doc in users}


def _too_many_removed(kind: str, removed: int, live: int, share: float) -> str | None:
    if live and removed / live > share:
        return (
            f"it would remove {removed} of the {live} live {kind} "
            f"({removed / live:.0%}, more than {share:.0%})"
        )
    return None


def check_dump(entities: dict[str, list[dict]], max_removed_share: float) -> GuardReport:
    """Compare a validated dump with the live catalogue (one projected read of each)."""
    live_services, live_users = _live_ids()
    services = {s["id"] for s in entities["services"] if s["status"] in RECOMMENDABLE_STATUSES}
    users = {u["id"] for u in entities["users"]}
    removed = Sizes(len(live_services - services), len(live_users - users))
    problems: list[str | None] = []
    if live_services or live_users:  # the first dump into an empty store is never refused
        if not services:
            problems.append("the dump holds no recommendable service")
        problems += [
            _too_many_removed(
                "recommendable services",
                removed.recommendable_services,
                len(live_services),
                max_removed_share,
            ),
            _too_many_removed("users", removed.users, len(live_users), max_removed_share),
        ]
    return GuardReport(
        live=Sizes(len(live_services), len(live_users)),
        dump=Sizes(len(services), len(users)),
        removed=removed,
        max_removed_share=max_removed_share,
        problems=tuple(problem for problem in problems if problem),
    )
