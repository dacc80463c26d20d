"""Ownership and portal-wide rules of the telephony layer, over a real SQLite store."""

from __future__ import annotations

import asyncio

import pytest

from sipline.store.crypto import SecretBox
from sipline.store.engines import open_store
from sipline.store.urls import sqlite_url
from sipline.telephony import errors
from sipline.telephony.caller import Caller
from sipline.telephony.errors import AccessDenied, LineNotFound, MaxCloudPbx, RegistrationNotFound, TitleExists
from sipline.telephony.lines import SipLines
from sipline.telephony.outgoing import OutgoingLines


@pytest.fixture
def lines(tmp_path):
    db = open_store(sqlite_url(tmp_path), SecretBox(b"k" * 32))
    db.migrate()
    asyncio.run(db.write(lambda repo: repo.insert_portal(domain="p", title="", member_id="m" * 32, max_cloud_lines=3,
                                                         now=0.0)))
    yield SipLines(db, incoming_server="pbx.test", clock=lambda: 1000.0)
    db.close()


WEBHOOK = Caller(portal_id=1, user_number=1, app_id="", scopes=frozenset({"telephony"}), can_modify_numbers=True)
APP = Caller(portal_id=1, user_number=1, app_id="app.1", scopes=frozenset({"telephony"}), can_modify_numbers=True)
CLERK = Caller(portal_id=1, user_number=2, app_id="", scopes=frozenset({"telephony"}), can_modify_numbers=False)


def add(lines, caller, **fields):
    values = dict(type_=None, title=None, server="s.example", login="u", password=None)
    return asyncio.run(lines.add(caller, **{**values, **fields}))


def listing(lines, caller):
    page = asyncio.run(lines.get(caller, filter_=None, sort=None, order=None, offset=0))
    return [line.config_id for line in page.lines]


def test_apps_and_webhooks_see_only_their_own_lines(lines):
    mine = add(lines, WEBHOOK, title="hook")
    theirs = add(lines, APP, title="app")
    assert theirs.app_id == "app.1"
    assert listing(lines, WEBHOOK) == [mine.config_id]
    assert listing(lines, APP) == [theirs.config_id]
    for call in (
        lines.update(APP, mine.config_id, type_=None, title="x", server=None, login=None, password=None),
        lines.delete(APP, mine.config_id),
    ):
        with pytest.raises(LineNotFound):
            asyncio.run(call)
    with pytest.raises(RegistrationNotFound):
        asyncio.run(lines.status(APP, mine.reg_id))
    assert asyncio.run(lines.status(WEBHOOK, mine.reg_id)).reg_id == mine.reg_id


def test_limits_and_titles_span_the_whole_portal(lines):
    add(lines, WEBHOOK, title="Shared")
    with pytest.raises(TitleExists):
        add(lines, APP, title="shared")
    add(lines, APP)
    add(lines, APP)
    with pytest.raises(MaxCloudPbx):
        add(lines, WEBHOOK)


def test_line_ids_and_default_line_are_portal_wide(lines):
    hook_line = add(lines, WEBHOOK)
    app_line = add(lines, APP, type_="office")
    assert app_line.incoming_server == "pbx.test"
    outgoing = OutgoingLines(lines)
    assert set(asyncio.run(outgoing.names(WEBHOOK))) == {f"reg{hook_line.reg_id}", f"sip{app_line.config_id}"}
    asyncio.run(outgoing.set_sip(WEBHOOK, app_line.config_id))
    assert asyncio.run(outgoing.get(APP)) == f"sip{app_line.config_id}"


def test_the_numbers_right_guards_every_rule(lines):
    outgoing = OutgoingLines(lines)
    for call in (
        lines.add(CLERK, type_=None, title=None, server="s.example", login="u", password=None),
        lines.get(CLERK, filter_=None, sort=None, order=None, offset=0),
        lines.status(CLERK, 1),
        lines.delete(CLERK, 1),
        lines.connector(CLERK),
        outgoing.names(CLERK),
        outgoing.set(CLERK, "x"),
    ):
        with pytest.raises(AccessDenied):
            asyncio.run(call)


def test_an_office_line_is_born_with_its_registrar_secrets(lines):
    """docs/behaviour.md#office-registrar, docs/behaviour.md#office-identity: HA1 for each algorithm, for the realm the line starts in, sealed at rest."""
    from sipline.sip import digest

    line = add(lines, APP, type_="office")
    user, portal_realm = asyncio.run(lines.db.read(lambda repo: repo.office_user(line.incoming_login)))
    assert portal_realm is None and user.realm == "pbx.test"
    assert user.ha1 == digest.ha1_kept(line.incoming_login, "pbx.test", line.incoming_password)
    with lines.db.engine.connect() as conn:
        [(sealed,)] = conn.exec_driver_sql("SELECT incoming_ha1 FROM line WHERE type = 'office'").all()
    assert user.ha1["MD5"].encode() not in sealed


def test_a_portal_refuses_lines_past_its_line_limit_of_both_types(lines):
    asyncio.run(lines.db.write(lambda repo: repo.update_portal(1, {"max_lines": 2})))
    add(lines, WEBHOOK, type_="office")
    add(lines, APP)  # every app's lines count
    for type_ in ("office", "cloud"):
        with pytest.raises(errors.MaxLines, match="more than 2 SIP lines"):
            add(lines, WEBHOOK, type_=type_)
    assert listing(lines, WEBHOOK) == [1]


def test_a_heavy_filter_lets_the_event_loop_turn_while_it_runs(lines):
    for n in range(300):
        add(lines, WEBHOOK, type_="office", login=f"u{n}")
    needles = [f"absent{n}" for n in range(500)]  # 300 lines × 500 values: three slices of work
    turns = []

    async def main():
        async def other():
            while True:
                turns.append(1)
                await asyncio.sleep(0)

        ticker = asyncio.ensure_future(other())
        await asyncio.sleep(0)
        turns.clear()
        page = await lines.get(WEBHOOK, filter_={"!%LOGIN": needles}, sort=None, order=None, offset=0)
        ticker.cancel()
        return page

    assert asyncio.run(main()).total == 300
    assert len(turns) >= 2
