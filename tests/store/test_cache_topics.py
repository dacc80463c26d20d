"""Line writes forget the cached reads they change, and only those (store/topics.py), in this process
and, through the store, in another one: run against every engine the `db` fixture offers."""

from __future__ import annotations

import asyncio
import time

from sipline.store.crypto import SecretBox
from sipline.store.database import MISSING
from sipline.store.engines import open_store
from sipline.store.sqlite import CHANGE_CHECK_INTERVAL
from sipline.store.topics import OFFICE_USER, PORTAL, PORTAL_HOST, WEBHOOK
from sipline.telephony.caller import Caller
from sipline.telephony.lines import SipLines


def run(coroutine):
    return asyncio.run(coroutine)


def caller_of(portal_id: int) -> Caller:
    return Caller(portal_id=portal_id, user_number=1, app_id="", scopes=frozenset({"telephony"}),
                  can_modify_numbers=True)


async def add(lines: SipLines, caller: Caller, title: str, type_: str = "cloud"):
    return await lines.add(caller, type_=type_, title=title, server="s.example", login="u", password="pw")


def test_line_writes_keep_the_portal_and_webhook_caches_unless_the_default_line_moves(db):
    portal = run(db.write(lambda repo: repo.insert_portal(domain="p.example", title="P", member_id="m" * 32,
                                                          max_cloud_lines=10, now=1.0)))
    caller = caller_of(portal.id)

    async def scenario() -> None:
        await db.start()  # PostgreSQL: serve from the cache only while listening
        lines = SipLines(db, incoming_server="pbx.test")
        keys = {
            PORTAL: ((PORTAL, portal.id), lambda repo: repo.portal(portal.id)),
            PORTAL_HOST: ((PORTAL_HOST, "p.example"), lambda repo: repo.portal_by_domain("p.example")),
            WEBHOOK: ((WEBHOOK, "no such code"), lambda repo: repo.webhook_grant("no such code")),
            OFFICE_USER: ((OFFICE_USER, "no such login"), lambda repo: repo.office_user("no such login")),
        }

        async def fill() -> None:
            for key, work in keys.values():
                await db.cached(key, work)

        def held() -> set[str]:
            return {topic for topic, (key, _) in keys.items() if db.recall(key) is not MISSING}

        await fill()
        assert held() == set(keys)
        first = await add(lines, caller, "first")  # becomes the portal's DEFAULT_LINE: the portal row changed
        assert held() == {WEBHOOK}
        assert (await lines.portal(portal.id)).default_line == first.line_id
        await fill()
        second = await add(lines, caller, "second", type_="office")
        assert held() == {PORTAL, PORTAL_HOST, WEBHOOK}  # a new office login: office users forgotten
        await lines.update(caller, second.config_id, type_=None, title="2nd", server=None, login=None, password=None)
        await lines.delete(caller, second.config_id)
        assert held() == {PORTAL, PORTAL_HOST, WEBHOOK}
        await lines.delete(caller, first.config_id)  # the DEFAULT_LINE goes
        assert held() == {WEBHOOK}
        assert (await lines.portal(portal.id)).default_line is None
    try:
        run(scenario())
    finally:
        db.close()


def test_a_default_line_set_by_another_process_is_seen(db):
    portal = run(db.write(lambda repo: repo.insert_portal(domain="p.example", title="P", member_id="m" * 32,
                                                          max_cloud_lines=10, now=1.0)))
    caller = caller_of(portal.id)

    async def scenario() -> None:
        await db.start()  # PostgreSQL: LISTEN for other processes' writes
        here = SipLines(db, incoming_server="pbx.test")
        other = open_store(db.url, SecretBox(b"k" * 32))  # another sipline process on the same store
        try:
            assert (await here.portal(portal.id)).default_line is None
            assert db.recall((PORTAL, portal.id)) is not MISSING
            added = await add(SipLines(other, incoming_server="pbx.test"), caller, "elsewhere")
            deadline = time.monotonic() + 2  # seen within milliseconds; the bound only stops a hang
            while (await here.portal(portal.id)).default_line != added.line_id:
                assert time.monotonic() < deadline, "the other process's DEFAULT_LINE was never seen"
                await asyncio.sleep(CHANGE_CHECK_INTERVAL)
        finally:
            other.close()
            db.close()

    run(scenario())
