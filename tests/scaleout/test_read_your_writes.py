"""A line written through one `api` process is in the very next voximplant.sip.get through another
(docs/behaviour.md#scale-out), although each keeps its portals' lines between calls: the kept list is
checked against the portal's lines version first (store/postgres.py)."""

from __future__ import annotations

import base64
import os

import httpx

from tests.integration.server import SiplineProcess
from tests.stores import fresh_postgres

ROUNDS = 200


def test_every_change_through_one_api_process_is_in_the_next_get_through_the_other(tmp_path):
    env = {"SIPLINE_DATABASE_URL": fresh_postgres(), "SIPLINE_SECRET_KEY": base64.b64encode(os.urandom(32)).decode()}
    apis = [SiplineProcess(tmp_path / f"api{i}", "--role", "api", env=env) for i in range(2)]
    try:
        for process in apis:
            process.start()
        path = "/rest/" + apis[0].webhook.split("/rest/", 1)[1]
        with httpx.Client(timeout=10) as client:

            def call(index: int, method: str, **params) -> dict:
                response = client.post(f"http://127.0.0.1:{apis[index % 2].port}{path}{method}", json=params)
                response.raise_for_status()
                return response.json()

            def listed(index: int) -> dict[str, dict]:
                return {row["CONFIG_ID"]: row for row in call(index, "voximplant.sip.get")["result"]}

            kept = call(0, "voximplant.sip.add", TYPE="office", SERVER="pbx.example.invalid", LOGIN="kept")
            for index in range(2):  # both processes hold the portal's lines from here on
                assert kept["result"]["CONFIG_ID"] in listed(index)
            for round_ in range(ROUNDS):
                writer, reader = round_ % 2, (round_ + 1) % 2
                added = call(writer, "voximplant.sip.add", TYPE="office", SERVER="pbx.example.invalid",
                             LOGIN=f"user{round_}", TITLE=f"Line {round_}")["result"]["CONFIG_ID"]
                assert listed(reader)[added]["TITLE"] == f"Line {round_}", f"round {round_}: add not seen"
                call(reader, "voximplant.sip.update", CONFIG_ID=int(added), TITLE=f"Renamed {round_}")
                assert listed(writer)[added]["TITLE"] == f"Renamed {round_}", f"round {round_}: update not seen"
                call(writer, "voximplant.sip.delete", CONFIG_ID=int(added))
                assert added not in listed(reader), f"round {round_}: delete not seen"
    finally:
        for process in apis:
            process.stop()
