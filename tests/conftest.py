"""Every sipline process the tests start asks a DNS server on loopback, never the machine's."""

from __future__ import annotations

import os

import pytest

from tests.peers.dns import LoopbackDns


@pytest.fixture(scope="session", autouse=True)
def loopback_dns():
    """An empty zone: every name is NXDOMAIN unless a test serves its own records."""
    with LoopbackDns() as dns:
        host, port = dns.address
        previous = os.environ.get("SIPLINE_DNS_SERVERS")
        os.environ["SIPLINE_DNS_SERVERS"] = f"{host}:{port}"
        yield dns
        if previous is None:
            del os.environ["SIPLINE_DNS_SERVERS"]
        else:
            os.environ["SIPLINE_DNS_SERVERS"] = previous
