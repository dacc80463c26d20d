"""Events queued with the change they report and leased for delivery (docs/behaviour.md#event-delivery),
on every engine the `db` fixture offers."""

from __future__ import annotations

import orjson
import sqlalchemy as sa

from sipline.store import schema as t
from sipline.store.event_records import DeliveryOutcome
from sipline.store.records import Cause, LineType, StatusChange, StatusResult
from tests.event_handlers import bind
from tests.store.test_repository import new_line, run, setup_portal

REG, BIND = "ONSIPLINEREGISTRATIONCHANGE", "ONSIPLINEBINDINGCHANGE"


def line_of(db, portal_id, line_type=LineType.CLOUD, app_id=""):
    return run(db.write(lambda repo: repo.insert_line(new_line(repo, portal_id, line_type, app_id=app_id), 1.0)))


def change(at: float, result=StatusResult.SUCCESS, code=200, cause=Cause.REGISTERED, **more) -> StatusChange:
    return StatusChange(at, result, code, "", cause, **more)


def deliveries(db) -> list[dict]:
    query = sa.select(t.event_delivery).order_by(t.event_delivery.c.id)
    return run(db.read(lambda repo: [dict(row) for row in repo.conn.execute(query).mappings()]))


def claim(db, worker="w", now=100.0, slots=10, in_flight=None, per_handler=4, outcomes=()):
    return run(db.write(lambda repo: repo.delivery_round(worker, now, list(outcomes), slots=slots,
                                                         handler_slots=in_flight or {}, per_handler=per_handler,
                                                         lease_until=now + 30)))


def test_a_status_change_queues_one_row_per_hearing_handler_and_only_for_changes(db):
    portal, *_ = setup_portal(db)
    line, other_apps = line_of(db, portal.id), line_of(db, portal.id, app_id="local.app")
    run(db.write(lambda repo: bind(repo, portal.id, REG, "http://h/1")))
    run(db.write(lambda repo: bind(repo, portal.id, BIND, "http://h/2")))  # hears office lines only
    run(db.write(lambda repo: bind(repo, portal.id, REG, "")))  # offline
    entries = [(line.id, change(10.0, StatusResult.IN_PROGRESS, 0, Cause.REGISTERING)),
               (line.id, change(11.0)), (line.id, change(12.0, cause=Cause.REFRESHED)),  # no change: nothing
               (other_apps.id, change(11.0))]  # another owner's line
    run(db.write(lambda repo: repo.add_history(entries)))
    rows = deliveries(db)
    assert [(row["event"], row["line_id"], row["created_at"]) for row in rows] == [(REG, line.id, 10.0), (REG, line.id, 11.0)]
    first, second = (orjson.loads(row["data"]) for row in rows)
    assert first == {"CONFIG_ID": line.config_id, "REG_ID": line.reg_id, "TYPE": "cloud", "STATUS_RESULT": "in_progress",
                     "STATUS_CODE": 0, "ERROR_MESSAGE": "", "PREVIOUS_STATUS_RESULT": "wait", "LAST_UPDATED": 10.0}
    assert second["PREVIOUS_STATUS_RESULT"] == "in_progress" and second["STATUS_RESULT"] == "success"
    offline = run(db.read(lambda repo: repo.conn.execute(sa.select(t.event_offline)).mappings().all()))
    assert [(row["event"], orjson.loads(row["data"])["STATUS_RESULT"]) for row in offline] == [
        (REG, "in_progress"), (REG, "success")]
    run(db.write(lambda repo: repo.add_history([(line.id, change(13.0, StatusResult.ERROR, 408, Cause.TIMEOUT))])))
    assert orjson.loads(deliveries(db)[-1]["data"])["PREVIOUS_STATUS_RESULT"] == "success"  # from the stored history


def test_office_entries_carry_the_binding_change(db):
    portal, *_ = setup_portal(db)
    office = line_of(db, portal.id, LineType.OFFICE)
    run(db.write(lambda repo: bind(repo, portal.id, BIND, "http://h/")))
    entries = [(office.id, change(5.0, cause=Cause.BINDING_ADDED, contact="sip:a@1.2.3.4", source="1.2.3.4:5060")),
               (office.id, change(6.0, cause=Cause.LINE_UPDATED))]
    run(db.write(lambda repo: repo.add_history(entries)))
    data = [orjson.loads(row["data"]) for row in deliveries(db)]
    assert data == [{"CONFIG_ID": office.config_id, "BINDINGS": 0, "CONTACT": "sip:a@1.2.3.4",
                     "SOURCE_ADDRESS": "1.2.3.4:5060", "CHANGE": "added"},
                    {"CONFIG_ID": office.config_id, "BINDINGS": 0, "CONTACT": "", "SOURCE_ADDRESS": "", "CHANGE": "removed"}]


def test_one_lines_events_are_leased_one_at_a_time_in_order_and_the_per_handler_cap_holds(db):
    portal, *_ = setup_portal(db)
    a, b, c = (line_of(db, portal.id) for _ in range(3))
    hook = run(db.write(lambda repo: bind(repo, portal.id, REG, "http://h/")))
    for at in (1.0, 3.0):
        run(db.write(lambda repo, at=at: repo.add_history(
            [(a.id, change(at)), (b.id, change(at)), (c.id, change(at))] if at == 1.0 else
            [(a.id, change(at, StatusResult.ERROR, 500, Cause.SERVER_ERROR))])))
    first = claim(db, per_handler=2)
    assert [(d.line_id, d.created_at) for d in first] == [(a.id, 1.0), (b.id, 1.0)]  # cap 2; a's second waits
    assert [d.line_id for d in claim(db, worker="other")] == [c.id]
    assert claim(db, worker="third") == []  # everything head-of-line is leased, the rest waits behind it
    delivered = DeliveryOutcome(first[0].id, hook, True, 101.0)
    retry = DeliveryOutcome(first[1].id, hook, False, 101.0, "http://h/", "body=1", "answered 500", next_at=200.0)
    following = claim(db, outcomes=[delivered, retry], now=101.0)
    assert [(d.line_id, d.created_at) for d in following] == [(a.id, 3.0)]
    [waiting] = [row for row in deliveries(db) if row["line_id"] == b.id]
    assert (waiting["attempts"], waiting["body"], waiting["last_error"], waiting["lease_owner"]) == (
        1, "body=1", "answered 500", None)
    [handler] = run(db.read(lambda repo: repo.handler_states(None)))
    assert handler.failing_since == 101.0 and handler.delivered_at == 101.0 and handler.queued == 3
    assert claim(db, now=129.0) == []  # leases live until their end (100 + 30)
    assert {d.line_id for d in claim(db, now=140.0)} == {a.id, c.id}  # leases ran out; b waits for its next_at
    assert {d.line_id for d in claim(db, now=250.0)} == {a.id, b.id, c.id}  # b due, the others leases ran out


def test_trim_drops_offline_first_then_the_oldest_deliveries(db):
    portal, *_ = setup_portal(db)
    line = line_of(db, portal.id)
    run(db.write(lambda repo: bind(repo, portal.id, REG, "http://h/")))
    run(db.write(lambda repo: bind(repo, portal.id, REG, "")))
    results = [StatusResult.SUCCESS, StatusResult.ERROR] * 3
    run(db.write(lambda repo: repo.add_history([(line.id, change(n, result)) for n, result in enumerate(results, 1)])))
    assert run(db.read(lambda repo: repo.queued_events()))[REG] == 12
    assert run(db.write(lambda repo: repo.trim_event_queues(8))) == [(portal.id, REG, 4)]
    assert run(db.write(lambda repo: repo.trim_event_queues(4))) == [(portal.id, REG, 4)]
    assert [row["created_at"] for row in deliveries(db)] == [3.0, 4.0, 5.0, 6.0]  # offline ones went first


def test_uninstall_queues_onappuninstall_and_removes_the_apps_handlers_and_events(db):
    portal, _row_id, _ = setup_portal(db)
    app = run(db.write(lambda repo: repo.insert_app(portal_id=portal.id, client_id="local.x", secret_hash="h", name="x",
                                                     scopes="telephony", handler_url="", allowed_users=None, now=1.0,
                                                     secret="s3cret")))
    line = line_of(db, portal.id, app_id="local.x")
    run(db.write(lambda repo: bind(repo, portal.id, REG, "http://h/reg", owner="local.x", app_id=app.id)))
    run(db.write(lambda repo: bind(repo, portal.id, "ONAPPUNINSTALL", "http://h/gone", owner="local.x", app_id=app.id)))
    run(db.write(lambda repo: repo.add_history([(line.id, change(2.0))])))
    assert run(db.write(lambda repo: repo.uninstall_app_events(app.id, 9.0))) == 1
    [row] = deliveries(db)
    assert (row["event"], row["url"], orjson.loads(row["data"])) == ("ONAPPUNINSTALL", "http://h/gone",
                                                                    {"LANGUAGE_ID": "en", "CLEAN": 0})
    assert run(db.read(lambda repo: repo.handler_states(None))) == []
    [claimed] = claim(db)
    assert claimed.url == "http://h/gone" and claimed.handler_url is None and claimed.client_id == "local.x"
    assert run(db.read(lambda repo: repo.signing_key(portal.id, app.id))) == "s3cret"


def test_the_portal_signing_secret_is_made_once_and_resealed_by_rotate_key(db):
    from sipline.store.crypto import SecretBox

    portal, *_ = setup_portal(db)
    secret = run(db.write(lambda repo: repo.portal_signing_secret(portal.id)))
    assert len(secret) == 64 and run(db.write(lambda repo: repo.signing_key(portal.id, None))) == secret
    run(db.write(lambda repo: repo.insert_app(portal_id=portal.id, client_id="local.y", secret_hash="h", name="y",
                                               scopes="telephony", handler_url="", allowed_users=None, now=1.0,
                                               secret="app-secret")))
    new_box = SecretBox(b"n" * 32)
    assert run(db.write(lambda repo: repo.reseal(new_box))) == 2  # no line secrets here: the two event secrets
    db.box = new_box
    assert run(db.read(lambda repo: repo.portal_signing_secret(portal.id))) == secret
    app_id = run(db.read(lambda repo: repo.app_by_client_id("local.y")))[0].id
    assert run(db.read(lambda repo: repo.signing_key(portal.id, app_id))) == "app-secret"
