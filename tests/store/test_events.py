"""Event handlers and the offline queue in the store (docs/behaviour.md#event-bind, docs/behaviour.md#event-offline),
on every engine the `db` fixture offers; two readers of the queue at once get disjoint records."""

from __future__ import annotations

import asyncio

import sqlalchemy as sa

from sipline.store.event_records import (
    Comparison,
    HandlerMatch,
    NewEventHandler,
    OfflineField,
    OfflineQuery,
    OfflineTerm,
)
from sipline.store.sql import SqlRepository
from tests.store.test_repository import run, setup_portal


def handler(portal_id: int, event: str = "ONSIPLINEREGISTRATIONCHANGE", url: str = "https://h.example/a",
            auth_type: int = 0, owner: str = "") -> NewEventHandler:
    return NewEventHandler(portal_id=portal_id, owner=owner, app_id=None, event=event, handler=url,
                           auth_type=auth_type, user_number=1, options="{}", created_at=5.0)


def test_handlers_are_unique_per_owner_and_unbinding_widens(db):
    portal, *_ = setup_portal(db)
    first = run(db.write(lambda repo: repo.insert_event_handler(handler(portal.id))))
    assert first.event == "ONSIPLINEREGISTRATIONCHANGE" and first.app_id is None and not first.offline
    assert first.failing_since is None and first.created_at == 5.0
    assert run(db.write(lambda repo: repo.insert_event_handler(handler(portal.id)))) is None
    for new in (handler(portal.id, auth_type=2), handler(portal.id, owner="app"),
                handler(portal.id, event="ONSIPLINEBINDINGCHANGE"), handler(portal.id, url="")):
        assert run(db.write(lambda repo, new=new: repo.insert_event_handler(new))) is not None
    mine = run(db.read(lambda repo: repo.event_handlers(portal.id, "")))
    assert [(row.event[9:], row.auth_type, row.offline) for row in mine] == [
        ("REGISTRATIONCHANGE", 0, False), ("REGISTRATIONCHANGE", 2, False), ("BINDINGCHANGE", 0, False),
        ("REGISTRATIONCHANGE", 0, True)]
    assert [row.auth_type for row in run(db.read(lambda repo: repo.event_handlers(portal.id, "", 2)))] == [2]
    assert run(db.read(lambda repo: repo.event_handler(first.id))) == first

    run(db.write(lambda repo: repo.conn.execute(sa.text(
        "INSERT INTO event_delivery (handler_id, portal_id, event, data, created_at, next_at) "
        f"VALUES ({first.id}, {portal.id}, 'ONSIPLINEREGISTRATIONCHANGE', '{{}}', 1, 1)"))))
    match = HandlerMatch(portal.id, "", "ONSIPLINEREGISTRATIONCHANGE", "https://h.example/a", None)
    assert run(db.write(lambda repo: repo.delete_event_handlers(match))) == 2  # both auth types
    assert run(db.write(lambda repo: repo.delete_event_handlers(match))) == 0
    left = run(db.read(lambda repo: repo.conn.execute(sa.text("SELECT count(*) FROM event_delivery")).scalar()))
    assert left == 0  # the removed handlers' queued deliveries went with them
    assert len(run(db.read(lambda repo: repo.event_handlers(portal.id, "app")))) == 1


def add_offline(db, portal_id: int, count: int, owner: str = "", event: str = "ONSIPLINEREGISTRATIONCHANGE",
                start: float = 100.0) -> list[int]:
    def work(repo):
        return [repo.insert_offline_event(portal_id=portal_id, owner=owner, event=event, data=f'{{"N": {n}}}',
                                          additional="{}", message_id=f"{n:032x}", created_at=start + n)
                for n in range(count)]

    return run(db.write(work))


def test_mark_select_clear_and_error(db):
    portal, *_ = setup_portal(db)
    ids = add_offline(db, portal.id, 5)
    add_offline(db, portal.id, 2, owner="app")
    query = OfflineQuery(portal.id, "", order=((OfflineField.TIMESTAMP_X, True),))
    assert run(db.write(lambda repo: repo.mark_offline_events(query, error=False, limit=3, process_id="p" * 32))) == 3
    marked = OfflineQuery(portal.id, "", (OfflineTerm(OfflineField.PROCESS_ID, Comparison.EQUAL, ("p" * 32,)),))
    rows = run(db.read(lambda repo: repo.offline_events(marked)))
    assert [row.id for row in rows] == ids[2:]  # the newest three, as ordered
    assert rows[0].data == '{"N": 2}' and rows[0].message_id == f"{2:032x}" and not rows[0].error
    assert run(db.write(lambda repo: repo.mark_offline_events(query, error=False, limit=9, process_id="q" * 32))) == 2

    failed = run(db.write(lambda repo: repo.fail_offline_events(portal.id, "", "p" * 32, [f"{3:032x}"])))
    assert failed == 1
    errored = OfflineQuery(portal.id, "", (OfflineTerm(OfflineField.ERROR, Comparison.EQUAL, (True,)),))
    [back] = run(db.read(lambda repo: repo.offline_events(errored)))
    assert back.id == ids[3] and back.process_id == "" and back.error
    assert run(db.write(lambda repo: repo.mark_offline_events(query, error=False, limit=9, process_id="r" * 32))) == 0
    assert run(db.write(lambda repo: repo.mark_offline_events(query, error=True, limit=9, process_id="r" * 32))) == 1

    gone = run(db.write(lambda repo: repo.delete_offline_events(portal.id, "", "p" * 32, ids=[ids[2]])))
    assert gone == 1
    assert run(db.write(lambda repo: repo.delete_offline_events(portal.id, "", "q" * 32, message_ids=["x" * 32]))) == 0
    assert run(db.write(lambda repo: repo.delete_offline_events(portal.id, "", "q" * 32))) == 2
    everything = OfflineQuery(portal.id, "")
    assert [row.id for row in run(db.read(lambda repo: repo.offline_events(everything)))] == [ids[3], ids[4]]
    assert run(db.read(lambda repo: repo.count_offline_events(OfflineQuery(portal.id, "app")))) == 2


def test_filters_order_and_paging(db):
    portal, *_ = setup_portal(db)
    ids = add_offline(db, portal.id, 6)
    add_offline(db, portal.id, 2, event="ONSIPLINEBINDINGCHANGE", start=200.0)

    def found(*terms, order=((OfflineField.ID, False),), limit=None, offset=0):
        query = OfflineQuery(portal.id, "", terms, order)
        return [row.id for row in run(db.read(lambda repo: repo.offline_events(query, limit=limit, offset=offset)))]

    term = OfflineTerm
    assert found(term(OfflineField.ID, Comparison.GREATER_OR_EQUAL, (ids[4],)),
                 term(OfflineField.EVENT_NAME, Comparison.EQUAL, ("ONSIPLINEREGISTRATIONCHANGE",))) == ids[4:]
    assert found(term(OfflineField.ID, Comparison.EQUAL, (ids[0], ids[2]))) == [ids[0], ids[2]]
    assert found(term(OfflineField.ID, Comparison.NOT_EQUAL, tuple(ids))) == [ids[-1] + 1, ids[-1] + 2]
    assert found(term(OfflineField.TIMESTAMP_X, Comparison.LESS, (102.0,))) == ids[:2]
    assert found(term(OfflineField.MESSAGE_ID, Comparison.NOT_EQUAL, (f"{0:032x}",)),
                 term(OfflineField.TIMESTAMP_X, Comparison.LESS_OR_EQUAL, (103.0,))) == ids[1:4]
    assert found(order=((OfflineField.EVENT_NAME, False), (OfflineField.TIMESTAMP_X, True)), limit=3) == [
        ids[-1] + 2, ids[-1] + 1, ids[5]]
    assert found(limit=3, offset=6) == [ids[-1] + 1, ids[-1] + 2]
    query = OfflineQuery(portal.id, "", (term(OfflineField.ERROR, Comparison.EQUAL, (False,)),))
    assert run(db.read(lambda repo: repo.count_offline_events(query))) == 8


def test_concurrent_readers_mark_disjoint_records(db):
    portal, *_ = setup_portal(db)
    add_offline(db, portal.id, 30)
    query = OfflineQuery(portal.id, "")
    if db.url.startswith("postgresql"):
        # two transactions open at once: the second skips what the first has locked and not yet committed
        engine = db.engine
        with engine.connect() as first, engine.connect() as second:
            first.begin(), second.begin()
            assert SqlRepository(first, db.box).mark_offline_events(query, error=False, limit=20, process_id="a") == 20
            assert SqlRepository(second, db.box).mark_offline_events(query, error=False, limit=20, process_id="b") == 10
            first.commit(), second.commit()
    else:
        async def both():
            return await asyncio.gather(*(
                db.write(lambda repo, marker=marker: repo.mark_offline_events(query, error=False, limit=20,
                                                                                process_id=marker))
                for marker in ("a", "b")))

        assert sorted(run(both())) == [10, 20]
    rows = run(db.read(lambda repo: repo.offline_events(query)))
    by_marker = {marker: {row.id for row in rows if row.process_id == marker} for marker in ("a", "b")}
    assert len(by_marker["a"]) + len(by_marker["b"]) == 30 and not by_marker["a"] & by_marker["b"]
