"""/metrics of a real `sipline serve` (README "Metrics"), parsed by prometheus_client's parser as
Prometheus would; the SIP and registrar families against real peers are in tests/interop/test_metrics.py,
several processes on PostgreSQL in tests/scaleout/test_metrics.py."""

from __future__ import annotations

import httpx

from sipline.rest.registry import METHODS
from tests.metrics import by_label, dashboard_metrics, exposed_names, families, value

DURATION = "sipline_rest_request_duration_seconds"


def test_every_family_has_help_and_every_status_is_there_at_zero(sipline):
    found = families(sipline.base_url)
    assert len(found) > 20
    assert {name: family.documentation for name, family in found.items() if len(family.documentation) < 20} == {}
    text = httpx.get(f"{sipline.base_url}/metrics").text
    for name, family in found.items():
        shown = name + "_total" if family.type == "counter" else name
        assert f"# HELP {shown} " in text and f"# TYPE {shown} {family.type}\n" in text
    assert by_label(sipline.base_url, "sipline_registrations", "status") == {
        "wait": 0, "in_progress": 0, "success": 0, "error": 0}
    assert value(sipline.base_url, "sipline_store_unavailable_total") == 0
    assert value(sipline.base_url, "sipline_registrar_bindings", transport="udp") == 0


def test_a_rest_call_moves_the_histogram_under_its_method_and_status(sipline, api):
    def count(method: str, code: str) -> float:
        return value(sipline.base_url, f"{DURATION}_count", method=method, code=code)

    assert count("voximplant.sip.get", "200") == 0
    api.result("voximplant.sip.get")
    api.result("VOXIMPLANT.SIP.GET.json")  # one method, however the URL spells it
    assert count("voximplant.sip.get", "200") == 2
    for name in ("no.such.method", "voximplant.sip.nonsense", "a" * 300):  # clients choose names: one label
        assert api.call(name).status_code == 404
    assert count("unknown", "404") == 3
    refused = api.call("voximplant.sip.status", json={"REG_ID": 424242}).status_code  # no such line
    assert refused >= 400 and count("voximplant.sip.status", str(refused)) == 1
    assert value(sipline.base_url, f"{DURATION}_bucket", method="voximplant.sip.get", code="200", le="+Inf") == 2
    assert 0 < value(sipline.base_url, f"{DURATION}_sum", method="voximplant.sip.get", code="200") < 10
    methods = by_label(sipline.base_url, f"{DURATION}_count", "method")
    assert set(methods) <= set(METHODS) | {"unknown"}


def test_the_dashboard_queries_only_what_sipline_exposes(sipline, api):
    api.result("voximplant.sip.get")
    assert dashboard_metrics() - exposed_names(families(sipline.base_url)) == set()
