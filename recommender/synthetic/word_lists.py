"""Word lists taken from a real catalogue (`flask seed seed_faker`), so synthetic data reads
like it. They are saved as JSON; `vocabulary` uses them in place of its own lists when the file
exists (SYNTHETIC_WORD_LISTS, default `word_lists.json` beside this module)."""

from __future__ import annotations

import json
import os
from pathlib import Path

DEFAULT_PATH = Path(__file__).with_name("word_lists.json")
NAMED = ("categories", "scientific_domains", "platforms")
DESCRIBED = (
    "target_users",
    "access_modes",
    "access_types",
    "trls",
    "life_cycle_statuses",
    "research_steps",
)


def word_lists_path() -> Path:
    return Path(os.environ.get("SYNTHETIC_WORD_LISTS") or DEFAULT_PATH)


def collect_word_lists() -> dict[str, list]:
    """Names (and descriptions) of the current catalogue, one projected read per collection."""
    from recommender.models import DUMP_ENTITIES, Service
    from recommender.store import get_db

    db = get_db()

    def rows(key: str, fields: tuple[str, ...]) -> list[dict]:
        name = DUMP_ENTITIES[key]._get_collection_name()
        return list(db[name].find({}, {field: 1 for field in fields}))

    lists: dict[str, list] = {
        key: sorted({row["name"] for row in rows(key, ("name",)) if row.get("name")})
        for key in NAMED
    }
    for key in DESCRIBED:
        pairs = {(r["name"], r.get("description")) for r in rows(key, ("name", "description"))}
        lists[key] = sorted(pairs, key=lambda pair: pair[0])
    taglines = db[Service._get_collection_name()].find({}, {"tagline": 1})
    words = {w.strip() for t in taglines for w in (t.get("tagline") or "").split(",")}
    lists["tagline_words"] = sorted(word for word in words if word)
    empty = [key for key, values in lists.items() if not values]
    if empty:
        raise ValueError(f"The catalogue has no {', '.join(empty)}: load a dump first")
    return lists


def save_word_lists(lists: dict[str, list], path: Path) -> None:
    path.write_text(json.dumps(lists, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def load_word_lists(path: Path | None = None) -> dict[str, list]:
    """The saved lists (described ones as (name, description) tuples), or {} when none."""
    path = path or word_lists_path()
    if not path.exists():
        return {}
    lists = json.loads(path.read_text(encoding="utf-8"))
    for key in DESCRIBED:
        if key in lists:
            lists[key] = [tuple(pair) for pair in lists[key]]
    return lists
