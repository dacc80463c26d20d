"""How sipline.sip.providers groups the caller's lines (docs/behaviour.md#providers), pure."""

from dataclasses import replace

from sipline.sip.address import provider_name
from sipline.store.records import BreakerState, Cause, ProviderState, StatusChange, StatusResult
from sipline.telephony.providers import providers_of
from tests.unit.test_registration_core import line_rows


def test_a_provider_is_the_next_hop_as_written():
    assert provider_name("SIP.Example.net", None) == "sip.example.net"
    assert provider_name("sip.example.net:5070", "") == "sip.example.net:5070"
    assert provider_name("sip:sip.example.net;transport=tcp", "proxy.example:5060") == "proxy.example:5060"
    assert provider_name("[2001:db8::1]:5080", None) == "[2001:db8::1]:5080"
    assert provider_name("not a server", None) == "not a server"


def test_lines_are_counted_by_provider_and_status_with_the_newest_error_and_the_worst_breaker():
    rows = line_rows(4, server="sip.example.net")
    rows[3] = (replace(rows[3][0], outbound_proxy="proxy.example"), rows[3][1])
    rows[1] = (rows[1][0], replace(rows[1][1], status_result=StatusResult.ERROR))
    rows[2] = (rows[2][0], replace(rows[2][1], status_result=StatusResult.SUCCESS))
    older = StatusChange(10.0, StatusResult.ERROR, 503, "Service Unavailable", Cause.SERVER_ERROR)
    newer = StatusChange(20.0, StatusResult.ERROR, 408, "Request Timeout", Cause.TIMEOUT)
    states = [
        ProviderState("sip.example.net", BreakerState.RECOVERING, 5.0),
        ProviderState("sip.example.net", BreakerState.OPEN, 7.0),  # another worker's
        ProviderState("sip.example.net", BreakerState.OPEN, 6.0),
        ProviderState("elsewhere.example", BreakerState.OPEN, 1.0),  # not the caller's
    ]
    providers = providers_of(rows, {2: newer, 3: older}, states)
    assert [p.name for p in providers] == ["proxy.example", "sip.example.net"]
    proxy, server = providers
    assert (proxy.lines, proxy.last_error, proxy.breaker, proxy.breaker_since) == (1, None, BreakerState.CLOSED, None)
    assert server.lines == 3 and server.last_error == newer
    assert {status.value: n for status, n in server.by_status.items()} == {
        "wait": 1, "in_progress": 0, "success": 1, "error": 1}
    assert (server.breaker, server.breaker_since) == (BreakerState.OPEN, 6.0)
