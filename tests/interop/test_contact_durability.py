"""A REGISTER leaves only once the store holds its Contact, so a process killed before it learnt the
outcome is followed by one that retires that Contact (docs/behaviour.md#reg-lifecycle; scale-out lease takeover)."""

from __future__ import annotations

import signal
import socket

from sipline.sip.parse import parse_message
from tests.integration.server import SiplineProcess
from tests.interop.conftest import FAST, add_line
from tests.stores import execute


def contacts_of(datagram: bytes) -> list[str]:
    return parse_message(datagram).headers.get_all("Contact")


def test_a_contact_sent_before_a_crash_is_retired_by_the_next_process(start_sipline, tmp_path):
    provider = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # a provider that never answers
    provider.bind(("127.0.0.1", 0))
    provider.settimeout(10)
    try:
        first = start_sipline()
        add_line(first, f"127.0.0.1:{provider.getsockname()[1]}", "user0100")
        datagram, _ = provider.recvfrom(65536)
        first.kill(signal.SIGKILL)  # at once: whatever the store holds now is all a successor knows
        (sent,) = contacts_of(datagram)
        assert f"@127.0.0.1:{first.sip_port};" in sent
        assert execute(tmp_path / "sipline", "SELECT sent_contact FROM registration") == [(sent.strip("<>"),)]

        again = SiplineProcess(tmp_path / "sipline", "--allow-private-targets", *FAST,
                               port=first.port).start()  # another SIP port
        try:
            datagram, _ = provider.recvfrom(65536)
            ours, retired = contacts_of(datagram)
            assert f"@127.0.0.1:{again.sip_port};" in ours and ";expires=" not in ours
            assert retired == f"{sent};expires=0"
        finally:
            again.stop()
    finally:
        provider.close()
