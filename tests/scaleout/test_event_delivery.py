"""Two `sip` workers on one PostgreSQL store deliver each event once (docs/behaviour.md#event-delivery)."""

from __future__ import annotations

import base64
import os
import time
from collections import Counter

from tests.event_handlers import Receiver
from tests.integration.server import SiplineProcess
from tests.peers import sipp
from tests.stores import fresh_postgres, run_sql
from tests.waiting import wait_until

LINES = 12


def test_two_sip_workers_deliver_each_event_exactly_once(tmp_path):
    from tests.interop.test_office_registrar import MD5_FIRST, NO_ABUSE_LIMITS, Office

    url = fresh_postgres()
    env = {"SIPLINE_DATABASE_URL": url, "SIPLINE_SECRET_KEY": base64.b64encode(os.urandom(32)).decode()}
    api = SiplineProcess(tmp_path / "api", "--role", "api", env=env).start()
    nodes = [SiplineProcess(tmp_path / f"sip{i}", "--role", "sip", "--allow-private-targets", *MD5_FIRST,
                            *NO_ABUSE_LIMITS, env=env).start() for i in range(2)]
    try:
        with Receiver() as receiver:
            run_sql(url, "INSERT INTO event_handler (portal_id, owner, event, handler, auth_type, user_number, "
                         f"options, created_at) VALUES ((SELECT min(id) FROM portal), '', 'ONSIPLINEBINDINGCHANGE', "
                         f"'{receiver.url()}', 0, 1, '{{}}', {time.time()})")
            offices = [Office(api, f"office {n}") for n in range(LINES)]
            for index, node in enumerate(nodes):  # each node's registrar takes half the lines' PBXes
                users = [office.user for office in offices[index::2]]
                assert sipp.register_office(tmp_path / f"sipp{index}", node.sip_port, None, users) == [
                    "result 200 expires=600"] * len(users)
            wait_until(lambda: len(receiver.received) >= LINES, 10)
            time.sleep(2)  # a second delivery of any of them would have come by now
            seen = Counter((form["data[CONFIG_ID]"], form["data[CHANGE]"]) for form in receiver.forms())
            assert sorted(seen) == sorted((str(office.config_id), "added") for office in offices)
            assert set(seen.values()) == {1}
            assert run_sql(url, "SELECT count(*) FROM event_delivery") == [(0,)]
    finally:
        for process in [api, *nodes]:
            process.stop()
