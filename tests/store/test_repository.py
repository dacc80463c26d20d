"""The store's contract, run against every engine the `db` fixture offers."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from contextlib import closing

import pytest
import sqlalchemy as sa

from sipline.store.crypto import code_hash
from sipline.store.database import CHANGE_CHECK_INTERVAL
from sipline.store.records import LineType, NewLine, StatusResult


def run(coroutine):
    return asyncio.run(coroutine)


def setup_portal(db):
    def work(repo):
        portal = repo.insert_portal(domain="p.example", title="P", max_cloud_lines=10, now=1.0)
        row_id, number = repo.insert_user(portal_id=portal.id, name="A", is_admin=True, can_modify_numbers=False)
        return portal, row_id, number

    return run(db.write(work))


def new_line(portal_id, line_type=LineType.CLOUD, **fields):
    values = dict(portal_id=portal_id, app_id="", type=line_type, title="", server="s.example", login="u",
                  password="pw", incoming_password="ab" * 16 if line_type is LineType.OFFICE else None)
    return NewLine(**{**values, **fields})


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
    cloud = run(db.write(lambda repo: repo.insert_line(new_line(portal.id, title="A"), 5.0)))
    office = run(db.write(lambda repo: repo.insert_line(new_line(portal.id, LineType.OFFICE), 6.0)))
    assert (cloud.config_id, office.config_id) == (1, 2)
    assert cloud.reg_id == 100001 and office.reg_id is None
    assert office.incoming_login == "sip2" and office.incoming_password == "ab" * 16
    assert (cloud.registration_status_code, office.registration_status_code) == (None, 0)
    registration = run(db.read(lambda repo: repo.registration(portal.id, "", 100001)))
    assert registration.status_result is StatusResult.WAIT and registration.last_updated == 5.0
    assert run(db.read(lambda repo: repo.registration(portal.id, "other-app", 100001))) is None
    run(db.write(lambda repo: repo.delete_line(cloud.id)))
    assert run(db.read(lambda repo: repo.registration(portal.id, "", 100001))) is None
    again = run(db.write(lambda repo: repo.insert_line(new_line(portal.id), 7.0)))
    assert (again.config_id, again.reg_id) == (3, 100002)  # sequences never reuse


def test_secrets_are_sealed_at_rest(db, tmp_path):
    portal, *_ = setup_portal(db)
    run(db.write(lambda repo: repo.insert_line(new_line(portal.id, LineType.OFFICE, password="hunter2-secret",
                                                        incoming_password="f" * 32), 1.0)))
    with closing(sqlite3.connect(tmp_path / "sipline.db")) as raw_db:
        password, incoming = raw_db.execute("SELECT password, incoming_password FROM line").fetchone()
    assert b"hunter2" not in password and b"f" * 32 not in incoming
    for path in tmp_path.glob("sipline.db*"):
        assert b"hunter2" not in path.read_bytes()


def test_titles_unique_per_portal_in_the_database(db):
    portal, *_ = setup_portal(db)
    run(db.write(lambda repo: repo.insert_line(new_line(portal.id, title="Main"), 1.0)))
    assert run(db.read(lambda repo: repo.title_taken(portal.id, "main", None)))
    with pytest.raises(sa.exc.IntegrityError):
        run(db.write(lambda repo: repo.insert_line(new_line(portal.id, title=" MAIN "), 1.0)))
    run(db.write(lambda repo: repo.insert_line(new_line(portal.id, title=""), 1.0)))
    run(db.write(lambda repo: repo.insert_line(new_line(portal.id, title=""), 1.0)))


def test_failed_write_leaves_nothing(db):
    portal, *_ = setup_portal(db)

    def work(repo):
        repo.insert_line(new_line(portal.id), 1.0)
        raise RuntimeError("rule failed after the insert")

    with pytest.raises(RuntimeError):
        run(db.write(work))
    assert run(db.read(lambda repo: repo.lines(portal.id, None))) == []
    assert run(db.write(lambda repo: repo.insert_line(new_line(portal.id), 1.0))).config_id == 1


def test_update_and_reset(db):
    portal, *_ = setup_portal(db)
    line = run(db.write(lambda repo: repo.insert_line(new_line(portal.id), 1.0)))
    run(db.write(lambda repo: repo.update_line(line.id, {"title": "T", "password": "new", "registration_status_code": 0})))
    run(db.write(lambda repo: repo.reset_registration(line.reg_id, 9.0)))
    (updated,) = run(db.read(lambda repo: repo.lines(portal.id, "")))
    assert (updated.title, updated.password, updated.registration_status_code) == ("T", "new", 0)
    assert run(db.read(lambda repo: repo.registration(portal.id, "", line.reg_id))).last_updated == 9.0
    assert run(db.read(lambda repo: repo.lines(portal.id, "another-app"))) == []


def test_cache_sees_commits_of_other_processes(db, tmp_path):
    portal, *_ = setup_portal(db)
    first = run(db.cached("lines", lambda repo: repo.lines(portal.id, None)))
    assert first == [] and run(db.cached("lines", lambda repo: repo.lines(portal.id, None))) is first
    other = sqlite3.connect(tmp_path / "sipline.db", isolation_level=None)
    other.execute("UPDATE portal SET title = 'changed elsewhere'")
    other.close()
    time.sleep(CHANGE_CHECK_INTERVAL * 2)  # commits of other processes show within this interval
    assert run(db.cached("portal", lambda repo: repo.portal(portal.id))).title == "changed elsewhere"
    run(db.write(lambda repo: repo.insert_line(new_line(portal.id), 1.0)))
    assert len(run(db.cached("lines", lambda repo: repo.lines(portal.id, None)))) == 1
