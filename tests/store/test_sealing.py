"""Sealed secrets are bound to their cell (table, column, row id), on every engine; migration 0009
re-seals what older versions stored unbound."""

from __future__ import annotations

import os

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from sipline.store.crypto import KeyMaterialError, SecretBox
from sipline.store.engines import open_store
from sipline.store.migrate import MIGRATIONS
from sipline.store.records import LineType
from sipline.store.urls import sqlite_url
from tests.store.test_repository import new_line, run, setup_portal
from tests.stores import fresh_postgres

KEY = b"k" * 32


def _copy(db, column: str, from_id: int, to_column: str, to_id: int) -> None:
    """What someone with write access to the database (not the key) could do."""
    with db.engine.begin() as conn:
        value = conn.execute(sa.text(f"SELECT {column} FROM line WHERE id = :id"), {"id": from_id}).scalar_one()
        conn.execute(sa.text(f"UPDATE line SET {to_column} = :value WHERE id = :id"), {"value": value, "id": to_id})


def test_a_password_copied_to_another_line_does_not_open(db):
    portal, *_ = setup_portal(db)
    first = run(db.write(lambda repo: repo.insert_line(new_line(repo, portal.id, title="A", password="first-pw"), 1.0)))
    second = run(db.write(lambda repo: repo.insert_line(new_line(repo, portal.id, title="B", password="second-pw"),
                                                        2.0)))
    _copy(db, "password", first.id, "password", second.id)
    with pytest.raises(KeyMaterialError):
        run(db.read(lambda repo: repo.line_by_config(portal.id, second.config_id)))
    assert run(db.read(lambda repo: repo.line_by_config(portal.id, first.config_id))).password == "first-pw"


def test_a_secret_copied_to_another_column_does_not_open(db):
    portal, *_ = setup_portal(db)
    office = run(db.write(lambda repo: repo.insert_line(new_line(repo, portal.id, LineType.OFFICE, password="pw"),
                                                        1.0)))
    _copy(db, "password", office.id, "incoming_password", office.id)
    with pytest.raises(KeyMaterialError):
        run(db.read(lambda repo: repo.line_by_config(portal.id, office.config_id)))


def test_secrets_read_back_in_their_own_cells(db):
    portal, *_ = setup_portal(db)
    office = run(db.write(lambda repo: repo.insert_line(new_line(repo, portal.id, LineType.OFFICE, password="pw",
                                                                 incoming_password="in" * 16), 1.0)))
    run(db.write(lambda repo: repo.store_ha1(office.id, "realm", {"MD5": "a" * 32})))
    user, _ = run(db.read(lambda repo: repo.office_user(office.incoming_login)))
    assert (user.password, user.ha1) == ("in" * 16, {"MD5": "a" * 32})
    assert run(db.read(lambda repo: repo.sample_secret())) == "pw"


def _sealed_before_0009(plaintext: str) -> bytes:
    """The layout versions before migration 0009 wrote: 1 ‖ nonce ‖ AES-GCM without associated data."""
    nonce = os.urandom(12)
    return b"\x01" + nonce + AESGCM(KEY).encrypt(nonce, plaintext.encode(), None)


def _store_at_0006(url: str) -> sa.Engine:
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.begin() as conn:
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        config.attributes["connection"] = conn
        command.upgrade(config, "0006")
    return engine


@pytest.mark.parametrize("engine_name", ["sqlite", "postgresql"])
def test_migration_0009_reseals_secrets_stored_before_it(engine_name, tmp_path):
    url = sqlite_url(tmp_path) if engine_name == "sqlite" else fresh_postgres()
    engine = _store_at_0006(url)
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO portal (id, domain, member_id, created_at) VALUES (1, 'p.example', "
                             "'m', 0)"))
        for line_id, kind, password, incoming in ((7, "cloud", "cloud-pw", None), (9, "office", None, "in-pw")):
            conn.execute(sa.text(
                "INSERT INTO line (id, config_id, portal_id, type, server, login, password, incoming_login, "
                "incoming_password, incoming_realm, incoming_ha1, created_at) VALUES (:id, :id, 1, :type, 's', "
                "'u', :password, :login, :incoming, :realm, :ha1, 0)"),
                {"id": line_id, "type": kind, "password": password and _sealed_before_0009(password),
                 "login": incoming and "sip9", "incoming": incoming and _sealed_before_0009(incoming),
                 "realm": incoming and "r", "ha1": incoming and _sealed_before_0009('{"MD5": "h"}')})
    engine.dispose()

    db = open_store(url, SecretBox(KEY))
    try:
        db.migrate()
        lines = {line.id: line for line in run(db.read(lambda repo: repo.lines(1, None)))}
        assert (lines[7].password, lines[9].incoming_password) == ("cloud-pw", "in-pw")
        user, _ = run(db.read(lambda repo: repo.office_user("sip9")))
        assert user.ha1 == {"MD5": "h"}
        with db.engine.connect() as conn:
            stored = conn.execute(sa.text("SELECT password FROM line WHERE id = 7")).scalar_one()
        assert bytes(stored)[:1] == b"\x02"  # bound to its cell now
    finally:
        db.close()


def test_migration_0009_needs_the_key_that_sealed_them(tmp_path):
    url = sqlite_url(tmp_path)
    engine = _store_at_0006(url)
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO portal (id, domain, member_id, created_at) VALUES (1, 'p', 'm', 0)"))
        conn.execute(sa.text("INSERT INTO line (id, config_id, portal_id, type, server, login, password, created_at) "
                             "VALUES (1, 1, 1, 'cloud', 's', 'u', :pw, 0)"), {"pw": _sealed_before_0009("pw")})
    engine.dispose()
    db = open_store(url, SecretBox(b"x" * 32))
    try:
        with pytest.raises(KeyMaterialError):
            db.migrate()
    finally:
        db.close()
    db = open_store(url, SecretBox(KEY))  # nothing was changed by the refused migration
    try:
        db.migrate()
        assert run(db.read(lambda repo: repo.sample_secret())) == "pw"
    finally:
        db.close()
