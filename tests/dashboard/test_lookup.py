"""The recommendations page: a user (by id or aai_uid) or a visit looked up; what each was
served, by which engine, what was clicked next on that page; bad input named."""

from __future__ import annotations

import datetime as dt
import uuid

from recommender.models.activity import Action, Recommendation, Root, Source, Target, UserAction
from recommender.models.activity import action_fingerprint as fingerprint
from recommender.models.marketplace import Service, User
from recommender.services.dashboard.lookup import LIMIT, lookup

AAI_UID = "cafe@egi.eu"
T0 = dt.datetime(2026, 11, 3, 10, 0)


def served(minutes: int, visit: str | None, engine: str = "NCF", **who) -> Recommendation:
    return Recommendation(
        unique_id=str(uuid.uuid4()),
        timestamp=T0 + dt.timedelta(minutes=minutes),
        visit_id=visit,
        page_id="/services",
        panel_id="v1",
        engine_version=engine,
        services=[1, 2, 3],
        candidates=list(range(1, 50)),
        **who,
    ).save()


def action(visit: str, minutes: int, root: Root | None, text: str = "Details") -> UserAction:
    stored = UserAction(
        unique_id=str(uuid.uuid4()),
        timestamp=T0 + dt.timedelta(minutes=minutes),
        source=Source(visit_id=visit, page_id="/services", root=root),
        target=Target(visit_id=str(uuid.uuid4()), page_id="/services/2"),
        action=Action(type="button", text=text, order=False),
    )
    stored.fingerprint = fingerprint(stored)
    return stored.save()


def test_a_user_is_found_by_id_and_by_aai_uid_with_what_was_clicked(app):
    User(id=7, aai_uid=AAI_UID).save()
    Service(id=2, name="Notebooks <beta>").save()
    visit, other = str(uuid.uuid4()), str(uuid.uuid4())
    first = served(0, visit, user=7)
    second = served(5, other, engine="RL", aai_uid=AAI_UID)  # logged in by aai_uid only
    served(6, str(uuid.uuid4()), user=8)  # someone else
    action(visit, 1, Root(type="recommendation_panel", service=2))
    action(visit, 2, Root(type="other_list", service=2), text="Order")
    action(str(uuid.uuid4()), 3, None)  # another page

    for kind, value in (("user", "7"), ("aai_uid", AAI_UID)):
        found = lookup(kind, value)
        assert found.user == {"_id": 7, "aai_uid": AAI_UID}
        assert [item.recommendation["_id"] for item in found.served] == [second.id, first.id]
        assert not found.more
    newest, oldest = lookup("user", "7").served
    assert newest.next_actions == []
    assert [a["action"]["text"] for a in oldest.next_actions] == ["Details", "Order"]
    assert [oldest.clicked(a) for a in oldest.next_actions] == [True, False]
    assert oldest.services == [(1, None), (2, "Notebooks <beta>"), (3, None)]
    assert "candidates" not in oldest.recommendation  # never read


def test_a_visit_shows_what_was_served_in_it(app):
    visit = str(uuid.uuid4())
    shown = served(0, visit)
    served(1, str(uuid.uuid4()))
    found = lookup("visit", visit.upper())  # any spelling of the UUID
    assert [item.recommendation["_id"] for item in found.served] == [shown.id]
    assert found.user is None


def test_only_the_newest_are_read(app):
    for minutes in range(LIMIT + 2):
        served(minutes, None, user=9)
    found = lookup("user", "9")
    assert found.more and len(found.served) == LIMIT
    assert found.served[0].recommendation["timestamp"] == T0 + dt.timedelta(minutes=LIMIT + 1)


def test_the_page_escapes_and_links_each_visit(client):
    visit = str(uuid.uuid4())
    Service(id=2, name="<script>x</script>").save()
    served(0, visit, user=7, aai_uid=AAI_UID)
    action(visit, 1, Root(type="recommendation_panel", service=2))
    shown = client.get("/dashboard/recommendations?kind=user&q=7").get_data(as_text=True)
    assert "&lt;script&gt;x&lt;/script&gt;" in shown and "<script>" not in shown
    assert f'href="/dashboard/recommendations?kind=visit&amp;q={visit}"' in shown
    assert "✔ panel, service <code>2</code>" in shown
    assert "No stored user has this user id." in shown


def test_nothing_served_and_bad_input_are_said_plainly(client):
    nothing = client.get("/dashboard/recommendations?kind=aai_uid&q=nobody@egi.eu")
    assert nothing.status_code == 200
    assert "Nothing was served to this aai_uid." in nothing.get_data(as_text=True)
    for query, message in (
        ("kind=user&q=abc", "user id must be an integer"),
        ("kind=user&q=99999999999999999999", "must fit in a signed 64-bit integer"),
        ("kind=visit&q=not-a-uuid", "visit id must be a UUID"),
        ("kind=email&q=x", "must be one of user, aai_uid, visit"),
    ):
        answer = client.get(f"/dashboard/recommendations?{query}")
        assert answer.status_code == 400, query
        assert message in answer.get_data(as_text=True), query
