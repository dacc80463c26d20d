"""The store's contract, run against every engine the `db` fixture offers."""

from __future__ import annotations

import asyncio
import time

import pytest
import sqlalchemy as sa

from sipline.store.crypto import SecretBox, code_hash
from sipline.store.database import MISSING
from sipline.store.engines import holds_store, open_store
from sipline.store.sqlite import CHANGE_CHECK_INTERVAL
from sipline.store.urls import sqlite_url
from sipline.store.records import Binding, LineType, NewLine, NewSession, RegistrationUpdate, StatusResult
from sipline.store.sqlite import CHANGE_CHECK_INTERVAL
from sipline.telephony.line_names import office_login, title_key
from tests.stores import fresh_postgres, run_sql


def run(coroutine):
    return asyncio.run(coroutine)


def setup_portal(db):
    def work(repo):
        portal = repo.insert_portal(domain="p.example", title="P", member_id="m" * 32, max_cloud_lines=10, now=1.0)
        row_id, number = repo.insert_user(portal_id=portal.id, name="A", is_admin=True, can_modify_numbers=False)
        return portal, row_id, number

    return run(db.write(work))


def new_line(repo, portal_id, line_type=LineType.CLOUD, **fields):
    """The values the telephony rules give a new line (telephony/lines.py), with its CONFIG_ID."""
    config_id = repo.next_config_id()
    office = line_type is LineType.OFFICE
    values = dict(config_id=config_id, portal_id=portal_id, app_id="", type=line_type, title="", server="s.example",
                  login="u", password="pw", incoming_login=office_login(config_id) if office else None,
                  incoming_password="ab" * 16 if office else None, registration_status_code=0 if office else None,
                  session=None if office else NewSession(f"{config_id:032x}", f"l{config_id:016x}"))
    values.update(fields)
    return NewLine(**values, title_key=title_key(values["title"]))


def test_portal_user_webhook(db):
    portal, row_id, number = setup_portal(db)
    assert number == 1 and len(portal.member_id) == 32 and portal.default_line is None
    run(db.write(lambda repo: repo.insert_webhook(portal_id=portal.id, user_row_id=row_id, code_hash=code_hash("c"),
                                                  scopes="telephony,call", now=2.0)))
    grant = run(db.read(lambda repo: repo.webhook_grant(code_hash("c"))))
    assert grant.scopes == {"telephony", "call"} and grant.user_number == 1
    assert grant.can_modify_numbers  # admins have every right
    assert run(db.read(lambda repo: repo.webhook_grant(code_hash("other")))) is None
    assert run(db.write(lambda repo: repo.insert_user(portal_id=portal.id, name="B", is_admin=False,
                                                      can_modify_numbers=False)))[1] == 2


def test_lines_ids_and_registrations(db):
    portal, *_ = setup_portal(db)
    cloud = run(db.write(lambda repo: repo.insert_line(new_line(repo, portal.id, title="A"), 5.0)))
    office = run(db.write(lambda repo: repo.insert_line(new_line(repo, portal.id, LineType.OFFICE), 6.0)))
    assert (cloud.config_id, office.config_id) == (1, 2)
    assert cloud.reg_id == 100001 and office.reg_id is None
    assert office.incoming_login == "sip2" and office.incoming_password == "ab" * 16
    assert (cloud.registration_status_code, office.registration_status_code) == (None, 0)
    registration = run(db.read(lambda repo: repo.registration(portal.id, "", 100001)))
    assert registration.status_result is StatusResult.WAIT and registration.last_updated == 5.0
    assert run(db.read(lambda repo: repo.registration(portal.id, "other-app", 100001))) is None
    run(db.write(lambda repo: repo.delete_line(cloud.id)))
    assert run(db.read(lambda repo: repo.registration(portal.id, "", 100001))) is None
    again = run(db.write(lambda repo: repo.insert_line(new_line(repo, portal.id), 7.0)))
    assert (again.config_id, again.reg_id) == (3, 100002)  # sequences never reuse


def test_secrets_are_sealed_at_rest(db, tmp_path):
    portal, *_ = setup_portal(db)
    run(db.write(lambda repo: repo.insert_line(new_line(repo, portal.id, LineType.OFFICE, password="hunter2-secret",
                                                        incoming_password="f" * 32), 1.0)))
    engine = sa.create_engine(db.url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.connect() as raw_db:  # what anyone with the database file or a psql prompt sees
        password, incoming = raw_db.execute(sa.text("SELECT password, incoming_password FROM line")).one()
    engine.dispose()
    assert b"hunter2" not in bytes(password) and b"f" * 32 not in bytes(incoming)
    for path in tmp_path.glob("sipline.db*"):
        assert b"hunter2" not in path.read_bytes()


def test_titles_unique_per_portal_in_the_database(db):
    portal, *_ = setup_portal(db)
    run(db.write(lambda repo: repo.insert_line(new_line(repo, portal.id, title="Main"), 1.0)))
    assert run(db.read(lambda repo: repo.title_taken(portal.id, "main", None)))
    with pytest.raises(sa.exc.IntegrityError):
        run(db.write(lambda repo: repo.insert_line(new_line(repo, portal.id, title=" MAIN "), 1.0)))
    run(db.write(lambda repo: repo.insert_line(new_line(repo, portal.id, title=""), 1.0)))
    run(db.write(lambda repo: repo.insert_line(new_line(repo, portal.id, title=""), 1.0)))


def test_failed_write_leaves_nothing(db):
    portal, *_ = setup_portal(db)

    def work(repo):
        repo.insert_line(new_line(repo, portal.id), 1.0)
        raise RuntimeError("rule failed after the insert")

    with pytest.raises(RuntimeError):
        run(db.write(work))
    assert run(db.read(lambda repo: repo.lines(portal.id, None))) == []
    assert run(db.write(lambda repo: repo.insert_line(new_line(repo, portal.id), 1.0))).config_id == 1


def test_update_and_reset(db):
    portal, *_ = setup_portal(db)
    line = run(db.write(lambda repo: repo.insert_line(new_line(repo, portal.id), 1.0)))
    run(db.write(lambda repo: repo.update_line(line.id, {"title": "T", "password": "new", "registration_status_code": 0})))
    run(db.write(lambda repo: repo.reset_registration(line.reg_id, 9.0)))
    (updated,) = run(db.read(lambda repo: repo.lines(portal.id, "")))
    assert (updated.title, updated.password, updated.registration_status_code) == ("T", "new", 0)
    assert run(db.read(lambda repo: repo.registration(portal.id, "", line.reg_id))).last_updated == 9.0
    assert run(db.read(lambda repo: repo.lines(portal.id, "another-app"))) == []


def test_cache_sees_commits_of_other_processes(db):
    portal, *_ = setup_portal(db)

    async def scenario() -> None:
        await db.start()  # PostgreSQL: LISTEN for other processes' writes
        other = open_store(db.url, SecretBox(b"k" * 32))  # another sipline process on the same store
        try:
            first = await db.cached(("portal", portal.id), lambda repo: repo.portal(portal.id))
            assert await db.cached(("portal", portal.id), lambda repo: repo.portal(portal.id)) is first
            assert await db.cached(("lines", portal.id), lambda repo: repo.lines(portal.id, None)) == []
            await other.write(lambda repo: repo.update_portal(portal.id, {"title": "changed elsewhere"}))
            await other.write(lambda repo: repo.insert_line(new_line(repo, portal.id), 1.0))
            deadline = time.monotonic() + 2  # seen within milliseconds; the bound only stops a hang
            while (await db.cached(("portal", portal.id), lambda repo: repo.portal(portal.id))).title != \
                    "changed elsewhere":
                assert time.monotonic() < deadline, "another process's commit was never seen"
                await asyncio.sleep(CHANGE_CHECK_INTERVAL)
            assert len(await db.cached(("lines", portal.id), lambda repo: repo.lines(portal.id, None))) == 1
        finally:
            other.close()
            db.close()

    run(scenario())



def test_bindings_move_from_before_to_after(db):
    portal, *_ = setup_portal(db)
    line = run(db.write(lambda repo: repo.insert_line(new_line(repo, portal.id, LineType.OFFICE), 1.0)))

    def binding(contact: str, expires_at: float, cseq: int = 1) -> Binding:
        return Binding(contact=contact, expires_at=expires_at, granted=60, call_id="c", cseq=cseq, transport="udp",
                       source=("192.0.2.1", 5060), local=("127.0.0.1", 5060), first_registered_at=1.0,
                       last_refreshed_at=1.0)

    def stored() -> list[Binding]:
        return run(db.read(lambda repo: repo.bindings_of([line.id], lock=False)))[line.id]

    def row_ids() -> dict[str, int]:
        query = sa.text("SELECT contact, id FROM binding")
        return dict(run(db.read(lambda repo: repo.conn.execute(query).all())))

    a, b = binding("sip:a@192.0.2.1", 100.0), binding("sip:b@192.0.2.1", 100.0)
    run(db.write(lambda repo: repo.save_bindings({line.id: ([], [a, b])})))
    assert stored() == [a, b]
    first_ids = row_ids()
    a2, c = binding("sip:a@192.0.2.1", 200.0, cseq=2), binding("sip:c@192.0.2.1", 300.0)
    run(db.write(lambda repo: repo.save_bindings({line.id: ([a, b], [a2, c])})))
    assert stored() == [a2, c]  # a refreshed, b gone, c new
    assert row_ids()["sip:a@192.0.2.1"] == first_ids["sip:a@192.0.2.1"]  # a refresh updates its row in place
    # a binding swept since `before` was read is simply not there to delete
    run(db.write(lambda repo: repo.delete_expired_bindings(250.0)))
    run(db.write(lambda repo: repo.save_bindings({line.id: ([a2, c], [c])})))
    assert stored() == [c]


def test_live_bindings_are_counted_by_transport(db):
    portal, *_ = setup_portal(db)
    lines = [run(db.write(lambda repo: repo.insert_line(new_line(repo, portal.id, LineType.OFFICE), 1.0)))
             for _ in range(2)]

    def binding(contact: str, transport: str, expires_at: float) -> Binding:
        return Binding(contact=contact, expires_at=expires_at, granted=60, call_id="c", cseq=1, transport=transport,
                       source=("192.0.2.1", 5060), local=("127.0.0.1", 5060), first_registered_at=1.0,
                       last_refreshed_at=1.0)

    assert run(db.read(lambda repo: repo.live_bindings_by_transport(50.0))) == {}
    run(db.write(lambda repo: repo.save_bindings({
        lines[0].id: ([], [binding("sip:a@192.0.2.1", "udp", 100.0), binding("sip:b@192.0.2.1", "tcp", 100.0)]),
        lines[1].id: ([], [binding("sip:c@192.0.2.1", "udp", 200.0), binding("sip:d@192.0.2.1", "tls", 40.0)]),
    })))
    assert run(db.read(lambda repo: repo.live_bindings_by_transport(50.0))) == {"udp": 2, "tcp": 1}
    assert run(db.read(lambda repo: repo.live_bindings_by_transport(150.0))) == {"udp": 1}


def test_kept_values_are_recalled_only_where_no_other_process_writes(db):
    async def scenario() -> object:
        await db.start()
        try:
            db.keep(("bindings", 1), ["kept"])
            return db.recall(("bindings", 1))
        finally:
            db.close()

    assert run(scenario()) == (MISSING if db.peers is not None else ["kept"])


def test_leases_share_the_lines_among_live_workers(db):
    portal, *_ = setup_portal(db)
    for _ in range(4):
        run(db.write(lambda repo: repo.insert_line(new_line(repo, portal.id), 1.0)))

    def round_of(worker: str, lease: float = 10.0):
        return run(db.write(lambda repo: repo.lease_round(worker, lease, 500), touches=()))

    first = round_of("a")
    assert (first.workers, len(first.acquired), first.held) == (1, 4, [])
    second = round_of("b")  # a holds everything, its leases are live: nothing to take yet
    assert (second.workers, second.acquired) == (2, [])
    shed = round_of("a")  # above its share (2 of 4): a gives two up
    assert (len(shed.held), len(shed.released)) == (2, 2)
    taken = round_of("b")
    assert sorted(taken.acquired) == sorted(shed.released) and not set(taken.acquired) & set(shed.held)


def test_a_worker_whose_leases_ran_out_loses_its_lines(db):
    portal, *_ = setup_portal(db)
    for _ in range(3):
        run(db.write(lambda repo: repo.insert_line(new_line(repo, portal.id), 1.0)))
    lease = 0.2
    gone = run(db.write(lambda repo: repo.lease_round("gone", lease, 500), touches=()))
    assert len(gone.acquired) == 3
    time.sleep(lease * 1.5)  # "gone" stopped renewing: its heartbeat and leases run out
    heir = run(db.write(lambda repo: repo.lease_round("heir", lease, 500), touches=()))
    assert (heir.workers, sorted(heir.acquired)) == (1, sorted(gone.acquired))
    back = run(db.write(lambda repo: repo.lease_round("gone", lease, 500), touches=()))
    assert back.held == [] and back.acquired == []  # it learns it holds nothing any more
    run(db.write(lambda repo: repo.release_leases("heir"), touches=()))
    assert len(run(db.write(lambda repo: repo.lease_round("gone", lease, 500), touches=())).acquired) == 3


def test_a_worker_writes_only_the_registrations_whose_lease_it_holds(db):
    portal, *_ = setup_portal(db)
    for _ in range(2):
        run(db.write(lambda repo: repo.insert_line(new_line(repo, portal.id), 1.0)))
    assert len(run(db.write(lambda repo: repo.lease_round("a", 10.0, 500), touches=())).acquired) == 2
    before = run(db.read(lambda repo: repo.cloud_registrations()))

    def save(owner: str | None, contact: str) -> None:
        updates = [RegistrationUpdate(
            reg_id=registration.reg_id, line_id=line.id, status_result=StatusResult.SUCCESS, status_code=200,
            error_message="", last_updated=2.0, call_id=registration.call_id, cseq_reserved=1000,
            registered_contact=contact, sent_contact=contact, expires_requested=600, outcome=True,
        ) for line, registration in before]
        run(db.write(lambda repo: repo.save_registrations(updates, owner), touches=("lines",)))

    save("b", "sip:l1@192.0.2.2")  # b does not hold them (a late write of a worker that lost them)
    assert run(db.read(lambda repo: repo.cloud_registrations())) == before
    save("a", "sip:l1@192.0.2.1")
    after = run(db.read(lambda repo: repo.cloud_registrations()))
    assert {(registration.sent_contact, registration.registered_contact, registration.status_code,
             line.registration_status_code) for line, registration in after} == {
        ("sip:l1@192.0.2.1", "sip:l1@192.0.2.1", 200, 200)}
    save(None, "sip:l1@192.0.2.3")  # one process on its own store: no leases to check
    assert {registration.sent_contact for _, registration in run(db.read(lambda repo: repo.cloud_registrations()))} \
        == {"sip:l1@192.0.2.3"}


def test_a_portal_keeps_its_line_limit_and_counts_its_lines(db):
    portal, *_ = setup_portal(db)
    assert portal.max_lines == 1000  # the column's default
    run(db.write(lambda repo: repo.update_portal(portal.id, {"max_lines": 2})))
    other = run(db.write(lambda repo: repo.insert_portal(domain="q.example", title="", member_id="n" * 32,
                                                         max_cloud_lines=1, now=1.0, max_lines=7)))
    assert run(db.read(lambda repo: (repo.portal(portal.id).max_lines, repo.portal(other.id).max_lines))) == (2, 7)
    run(db.write(lambda repo: repo.insert_line(new_line(repo, portal.id), 1.0)))
    run(db.write(lambda repo: repo.insert_line(new_line(repo, portal.id, LineType.OFFICE), 1.0)))
    run(db.write(lambda repo: repo.insert_line(new_line(repo, other.id, LineType.OFFICE), 1.0)))
    counted = run(db.read(lambda repo: (repo.count_lines(portal.id), repo.count_lines(portal.id, LineType.OFFICE),
                                        repo.count_cloud_lines(portal.id), repo.count_lines(other.id))))
    assert counted == (2, 1, 1, 1)


def test_line_states_join_each_line_with_its_registration_and_live_bindings(db):
    portal, *_ = setup_portal(db)
    other = run(db.write(lambda repo: repo.insert_portal(domain="q.example", title="Q", member_id="n" * 32,
                                                         max_cloud_lines=10, now=1.0)))
    cloud = run(db.write(lambda repo: repo.insert_line(new_line(repo, portal.id, title="A"), 5.0)))
    office = run(db.write(lambda repo: repo.insert_line(new_line(repo, portal.id, LineType.OFFICE), 6.0)))
    idle = run(db.write(lambda repo: repo.insert_line(new_line(repo, portal.id, LineType.OFFICE, title="I"), 6.0)))
    theirs = run(db.write(lambda repo: repo.insert_line(new_line(repo, other.id, title="Q"), 7.0)))
    update = RegistrationUpdate(reg_id=cloud.reg_id, line_id=cloud.id, status_result=StatusResult.ERROR,
                                status_code=403, error_message="Forbidden", last_updated=8.0, call_id="c",
                                cseq_reserved=10, registered_contact=None, sent_contact=None, expires_requested=600,
                                outcome=True)
    run(db.write(lambda repo: repo.save_registrations([update])))

    def binding(contact: str, expires_at: float, refreshed: float) -> Binding:
        return Binding(contact=contact, expires_at=expires_at, granted=60, call_id="c", cseq=1, transport="udp",
                       source=("192.0.2.1", 5060), local=("127.0.0.1", 5060), first_registered_at=1.0,
                       last_refreshed_at=refreshed)

    live = [binding("sip:a@192.0.2.1", 200.0, 50.0), binding("sip:b@192.0.2.1", 300.0, 70.0)]
    gone = binding("sip:c@192.0.2.1", 90.0, 80.0)  # expired at 100, not yet swept
    run(db.write(lambda repo: repo.save_bindings({office.id: ([], [*live, gone])})))

    def states(**filters):
        return run(db.read(lambda repo: repo.line_states(100.0, **filters)))

    every = states()
    assert [state.line.config_id for state in every] == [cloud.config_id, office.config_id, idle.config_id,
                                                          theirs.config_id]
    by_line = {state.line.id: state for state in every}
    assert by_line[cloud.id].registration.status_result is StatusResult.ERROR
    assert (by_line[cloud.id].registration.status_code, by_line[cloud.id].registration.error_message) == (
        403, "Forbidden")
    assert (by_line[cloud.id].bindings, by_line[cloud.id].portal_domain) == (0, "p.example")
    assert (by_line[office.id].registration, by_line[office.id].bindings, by_line[office.id].last_registered) == (
        None, 2, 70.0)
    assert (by_line[idle.id].bindings, by_line[idle.id].last_registered) == (0, None)
    assert by_line[theirs.id].portal_domain == "q.example"
    assert by_line[office.id].line.incoming_password == "ab" * 16  # records as the repository gives them
    assert [state.line.id for state in states(portal_id=other.id)] == [theirs.id]
    assert [state.line.id for state in states(status=StatusResult.ERROR)] == [cloud.id]
    assert [state.line.id for state in states(status=StatusResult.WAIT)] == [theirs.id]
    assert [state.line.id for state in states(config_id=office.config_id)] == [office.id]
    assert states(config_id=office.config_id, portal_id=other.id) == []
    assert states(config_id=2**40) == []  # beyond what the column holds: no such line, not an error


def test_an_app_deleted_takes_its_codes_and_tokens(db):
    portal, row_id, _ = setup_portal(db)

    def make(repo):
        app = repo.insert_app(portal_id=portal.id, client_id="local.a", secret_hash="h", name="A",
                              scopes="telephony", handler_url="", allowed_users=None, now=1.0)
        repo.insert_code(app_id=app.id, user_row_id=row_id, code_hash=code_hash("code"), expires_at=99.0)
        repo.insert_token(app_id=app.id, user_row_id=row_id, access_hash=code_hash("access"),
                          refresh_hash=code_hash("refresh"), access_expires_at=99.0, refresh_expires_at=99.0, now=1.0)

    run(db.write(make))
    assert run(db.write(lambda repo: repo.delete_app("local.a"))) is True
    assert run(db.write(lambda repo: (repo.apps(portal.id), repo.token_grant(code_hash("access")),
                                     repo.take_code(code_hash("code"))))) == ([], None, None)
    assert run(db.write(lambda repo: repo.delete_app("local.a"))) is False


def test_holds_store_tells_a_store_from_nothing_and_makes_nothing(db, tmp_path):
    assert holds_store(db.url)
    missing = tmp_path / "nowhere" / "sipline.db"
    assert not holds_store(sqlite_url(missing.parent)) and not missing.parent.exists()
    empty = tmp_path / "empty.db"
    empty.touch()
    assert not holds_store(f"sqlite:///{empty}") and empty.stat().st_size == 0
    if db.url.startswith("postgresql"):
        fresh = fresh_postgres()
        assert not holds_store(fresh)
        assert run_sql(fresh, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") == [(0,)]
