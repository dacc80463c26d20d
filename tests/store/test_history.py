"""Each line's history in the store (docs/behaviour.md#line-history), on every engine the `db` fixture offers:
kept to the newest 100, written with the engine's status batch under its lease, and the registrar's
binding changes recorded once however they leave the store."""

from __future__ import annotations

import sqlalchemy as sa

from sipline.registrar.changes import commit, sweep
from sipline.store.records import Binding, Cause, LineType, RegistrationUpdate, StatusChange, StatusResult
from tests.store.test_repository import new_line, run, setup_portal


def entry(number: int, cause: Cause = Cause.TIMEOUT) -> StatusChange:
    return StatusChange(float(number), StatusResult.ERROR, 408, f"attempt {number}", cause)


def add_cloud_line(db, portal_id: int):
    return run(db.write(lambda repo: repo.insert_line(new_line(repo, portal_id), 1.0)))


def history(db, line_id: int) -> list[StatusChange]:
    return run(db.read(lambda repo: repo.history(line_id)))


def test_a_line_keeps_its_newest_100_entries_newest_first(db):
    portal, *_ = setup_portal(db)
    line, other = add_cloud_line(db, portal.id), add_cloud_line(db, portal.id)
    run(db.write(lambda repo: repo.add_history([(other.id, entry(0, Cause.REGISTERED))])))
    for start in range(1, 121, 30):  # 120 changes, written in batches as the engine writes them
        run(db.write(lambda repo, start=start: repo.add_history([(line.id, entry(n)) for n in range(start, start + 30)])))
    kept = history(db, line.id)
    assert [item.at for item in kept] == [float(n) for n in range(120, 20, -1)]
    assert kept[0] == entry(120)
    count = sa.text("SELECT count(*) FROM line_history WHERE line_id = :line")
    assert run(db.read(lambda repo: repo.conn.execute(count, {"line": line.id}).scalar_one())) == 100  # pruned rows
    assert history(db, other.id) == [entry(0, Cause.REGISTERED)]  # another line's entries are its own


def test_entries_of_a_line_gone_are_dropped_and_deleting_a_line_deletes_its_history(db):
    portal, *_ = setup_portal(db)
    line = add_cloud_line(db, portal.id)
    run(db.write(lambda repo: repo.add_history([(line.id, entry(1)), (line.id + 1000, entry(2))])))
    assert history(db, line.id) == [entry(1)]
    run(db.write(lambda repo: repo.delete_line(line.id)))
    assert history(db, line.id) == []


def test_the_engines_batch_writes_history_only_for_lines_whose_lease_it_holds(db):
    portal, *_ = setup_portal(db)
    add_cloud_line(db, portal.id)
    [(line, registration)] = run(db.read(lambda repo: repo.cloud_registrations()))
    assert line.portal_domain == "p.example"  # for the engine's log lines
    assert run(db.write(lambda repo: repo.lease_round("a", 10.0, 500), touches=())).acquired == [line.id]

    def save(owner: str | None, number: int) -> None:
        update = RegistrationUpdate(
            reg_id=registration.reg_id, line_id=line.id, status_result=StatusResult.ERROR, status_code=408,
            error_message=f"attempt {number}", last_updated=float(number), call_id=registration.call_id,
            cseq_reserved=1000, registered_contact=None, sent_contact=None, expires_requested=600, outcome=True,
            history=[entry(number)],
        )
        run(db.write(lambda repo: repo.save_registrations([update], owner), touches=("lines",)))

    save("b", 1)  # not b's line: neither its status nor its history is written
    assert history(db, line.id) == []
    save("a", 2)
    save(None, 3)  # one process on its own store: no leases to check
    assert history(db, line.id) == [entry(3), entry(2)]


def binding(contact: str, expires_at: float, source: tuple[str, int] = ("192.0.2.1", 5060)) -> Binding:
    return Binding(contact=contact, expires_at=expires_at, granted=60, call_id="c", cseq=1, transport="udp",
                   source=source, local=("127.0.0.1", 5060), first_registered_at=1.0, last_refreshed_at=1.0)


def test_binding_changes_are_recorded_once_and_a_plain_refresh_records_nothing(db):
    portal, *_ = setup_portal(db)
    office = run(db.write(lambda repo: repo.insert_line(new_line(repo, portal.id, LineType.OFFICE), 1.0)))
    ids = {office.id: office.config_id}

    def changed(before: list[Binding], after: list[Binding], now: float):
        return run(db.write(lambda repo: commit(repo, {office.id: before}, {office.id: after}, ids, now)))

    def stored() -> list[Binding]:
        return run(db.read(lambda repo: repo.bindings_of([office.id], lock=False)))[office.id]

    a, b = binding("sip:a@192.0.2.1", 100.0), binding("sip:b@192.0.2.1", 100.0)
    logged = changed([], [a, b], 10.0)
    assert [(config_id, item.cause, item.contact) for config_id, item in logged] == [
        (office.config_id, Cause.BINDING_ADDED, a.contact), (office.config_id, Cause.BINDING_ADDED, b.contact)]
    assert logged[0][1] == StatusChange(10.0, StatusResult.SUCCESS, 200, "", Cause.BINDING_ADDED, a.contact,
                                        "192.0.2.1:5060", "udp")
    assert changed([a, b], [binding(a.contact, 110.0), b], 20.0) == []  # a refresh: nothing more than before
    a_refreshed = stored()[0]
    a_moved = binding(a.contact, 120.0, source=("192.0.2.9", 5070))  # a NAT port changed
    assert [item.cause for _, item in changed([a_refreshed, b], [a_moved, b], 30.0)] == [Cause.BINDING_REFRESHED]
    removed = changed([a_moved, b], [a_moved], 40.0)  # Expires 0 for b
    assert [(item.cause, item.contact, item.result) for _, item in removed] == [
        (Cause.BINDING_REMOVED, b.contact, StatusResult.SUCCESS)]
    # a expires; the sweeper deletes and records it once, however often it sweeps
    assert [(item.cause, item.result, item.code) for _, item in run(db.write(lambda repo: sweep(repo, 130.0)))] == [
        (Cause.BINDING_EXPIRED, StatusResult.WAIT, 0)]
    assert run(db.write(lambda repo: sweep(repo, 131.0))) == []
    # a cache still holding the swept binding: the PBX registers the same Contact again
    again = binding(a.contact, 300.0)
    assert [item.cause for _, item in changed([a_moved], [again], 140.0)] == [Cause.BINDING_ADDED]
    assert stored() == [again]  # a new row: the old one was swept
    causes = [item.cause for item in history(db, office.id)]
    assert causes == [Cause.BINDING_ADDED, Cause.BINDING_EXPIRED, Cause.BINDING_REMOVED, Cause.BINDING_REFRESHED,
                      Cause.BINDING_ADDED, Cause.BINDING_ADDED]


def test_a_commit_that_finds_an_expired_row_deletes_and_records_it_and_the_sweeper_does_not(db):
    portal, *_ = setup_portal(db)
    office = run(db.write(lambda repo: repo.insert_line(new_line(repo, portal.id, LineType.OFFICE), 1.0)))
    old = binding("sip:a@192.0.2.1", 100.0)
    run(db.write(lambda repo: commit(repo, {office.id: []}, {office.id: [old]}, {office.id: 7}, 10.0)))
    fresh = binding("sip:a@192.0.2.1", 400.0)  # the same Contact, before the sweeper came by
    logged = run(db.write(lambda repo: commit(repo, {office.id: [old]}, {office.id: [fresh]}, {office.id: 7}, 150.0)))
    assert [(item.cause, item.result) for _, item in logged] == [
        (Cause.BINDING_EXPIRED, StatusResult.SUCCESS), (Cause.BINDING_ADDED, StatusResult.SUCCESS)]
    assert run(db.read(lambda repo: repo.bindings_of([office.id], lock=False)))[office.id] == [fresh]
    assert run(db.write(lambda repo: sweep(repo, 151.0))) == []
