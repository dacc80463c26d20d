"""Kamailio's uac_reg as the customer's office PBX, registering to sipline with its own client code (docs/behaviour.md#check-real-pbx).

Kamailio 5.6 answers only the first WWW-Authenticate and only MD5: sipline's default
(MD5 alone, README "Office lines") serves it, so these processes run with the defaults.
"""

from __future__ import annotations

import pytest

from tests.interop.test_office_registrar import NO_ABUSE_LIMITS, Office
from tests.peers.kamailio_uac import Account, KamailioUac
from tests.waiting import wait_until


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_kamailio_registers_as_the_office_pbx(start_sipline, tmp_path, transport):
    process = start_sipline(*NO_ABUSE_LIMITS, "--registrar-min-expires", "5")
    office = Office(process)
    user, password = office.user
    account = Account(user, password, "127.0.0.1", process.sip_port, office.row["INCOMING_SERVER"],
                      expires=8, transport=transport)
    with KamailioUac(tmp_path / "kamailio-uac", [account]) as pbx:
        port = pbx.port
        wait_until(lambda: pbx.registered(user), 10,
                   interval=0.1, message="timed out waiting for Kamailio to register")
        [binding] = office.bindings()
        assert binding["CONTACT"].startswith(f"sip:{user}@127.0.0.1:{port}")
        assert binding["TRANSPORT"] == transport and binding["USER_AGENT"].startswith("kamailio-uac")
        first = binding["EXPIRES_AT"]
        # Kamailio refreshes 4 s before the 8 s run out: one binding, with a later expiry
        wait_until(lambda: office.bindings() and office.bindings()[0]["EXPIRES_AT"] != first, 10,
                   interval=0.1, message="timed out waiting for a refresh")
        assert len(office.bindings()) == 1

        office.update(PASSWORD="changed-trunk-secret")  # bindings go at once; the PBX registers again
        assert office.bindings() == []
        wait_until(lambda: len(office.bindings()) == 1, 10,
                   interval=0.1, message="timed out waiting for Kamailio to register again")


def test_kamailio_with_the_wrong_password_never_registers(start_sipline, tmp_path):
    process = start_sipline(*NO_ABUSE_LIMITS)
    office = Office(process)
    account = Account(office.user[0], "not-it", "127.0.0.1", process.sip_port, office.row["INCOMING_SERVER"])
    with KamailioUac(tmp_path / "kamailio-uac", [account]) as pbx:
        wait_until(lambda: f"authentication failed for <{office.user[0]}>" in pbx.log(), 10,
                   interval=0.1, message="timed out waiting for the failure")
        assert not pbx.registered(office.user[0])
    assert office.bindings() == []
