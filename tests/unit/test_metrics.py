"""The /metrics tables (server/metrics.py, server/sip_metrics.py), and the Grafana dashboard and README
table written over them; tests/integration/test_metrics.py checks the same against a running sipline."""

from __future__ import annotations

import json
import re
from pathlib import Path

from sipline.registrar.abuse import AbuseLimits, Guard
from sipline.server.event_stats import EventCollector, EventStats
from sipline.server.metrics import UNKNOWN_METHOD, Metrics, method_label
from sipline.server.sip_metrics import FAMILIES, STATS, ZEROS
from tests.metrics import DASHBOARD, SUFFIXES, dashboard_metrics

ROOT = Path(__file__).resolve().parents[2]


def families() -> dict[str, tuple[str, str]]:
    """Every family sipline can expose: name → (type, HELP)."""
    found = {name: (kind, help_text) for name, (kind, help_text, _) in FAMILIES.items()}
    for family in [*Metrics().registry.collect(), *EventCollector(EventStats(), db=None).collect()]:  # type: ignore[arg-type]
        found[family.name] = (family.type, family.documentation)
    return found


def sample_names() -> set[str]:
    return {name + suffix for name, (kind, _) in families().items() for suffix in SUFFIXES[kind]}


def test_every_metric_the_dashboard_queries_is_one_sipline_exposes():
    used = dashboard_metrics()
    assert used - sample_names() == set()
    # each topic of the dashboard has its panel
    assert {
        "sipline_registrations",
        "sipline_rest_request_duration_seconds_bucket",
        "sipline_rest_request_duration_seconds_count",
        "sipline_registrar_accepted_total",
        "sipline_registrar_challenged_total",
        "sipline_registrar_refused_total",
        "sipline_registrar_bindings",
        "sipline_sip_messages_received_total",
        "sipline_sip_messages_sent_total",
        "sipline_sip_messages_dropped_total",
        "sipline_store_unavailable_total",
        "sipline_events_delivered_total",
        "sipline_events_queued",
    } <= used


def test_the_dashboard_is_one_grafana_can_import():
    dashboard = json.loads(DASHBOARD.read_text())
    panels = dashboard["panels"]
    assert dashboard["uid"] and dashboard["title"] and dashboard["schemaVersion"] >= 36
    assert len({panel["id"] for panel in panels}) == len(panels)
    assert {variable["name"] for variable in dashboard["templating"]["list"]} >= {"datasource", "instance"}
    for panel in panels:
        place = panel["gridPos"]
        assert place["x"] + place["w"] <= 24 and place["h"] > 0
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == "${datasource}" and panel["targets"]
        assert len({target["refId"] for target in panel["targets"]}) == len(panel["targets"])
        assert all('instance=~"$instance"' in target["expr"] for target in panel["targets"])


def test_every_family_has_help_and_a_row_in_the_readme():
    readme = (ROOT / "README.md").read_text()
    for name, (kind, help_text) in families().items():
        assert len(help_text) > 20, name
        shown = name + SUFFIXES[kind][0] if kind == "counter" else name
        assert f"| `{shown}` | {kind} |" in readme, shown


def test_every_counter_of_the_transport_feeds_a_family():
    source = "\n".join(path.read_text() for path in (ROOT / "src" / "sipline").rglob("*.py"))
    literal = set(re.findall(r'stats\[\s*"([a-z_]+)"\s*\]', source))
    # composed keys: "dropped_" + a stream's reason (stream.py), "flows_refused_" + a cap (admission.py),
    # "replied" as what manager._to_source counts an answer as
    composed = {"dropped_malformed", "dropped_oversized", "flows_refused_total", "flows_refused_per_source", "replied"}
    assert literal and literal | composed == set(STATS)
    for family, labels in STATS.values():
        assert family in FAMILIES and labels in ZEROS[family]
    for family, label_sets in ZEROS.items():
        assert all(len(labels) == len(FAMILIES[family][2]) for labels in label_sets), family


def test_registrations_start_at_zero_for_every_status():
    assert ZEROS["sipline_registrations"] == [("wait",), ("in_progress",), ("success",), ("error",)]


def test_a_rest_method_label_is_a_name_sipline_serves_or_unknown():
    assert method_label("/rest/1/code/voximplant.sip.get") == "voximplant.sip.get"
    assert method_label("/rest/1/code/VOXIMPLANT.SIP.GET.json") == "voximplant.sip.get"
    assert method_label("//rest//1/code//voximplant.sip.add.xml/") == "voximplant.sip.add"
    assert method_label("/rest/batch") == "batch"
    assert method_label("/rest/1/code/voximplant.sip.nonsense1") == UNKNOWN_METHOD
    assert method_label("/rest/1/code/" + "x" * 5000) == UNKNOWN_METHOD
    assert method_label("/favicon.ico") == UNKNOWN_METHOD
    assert method_label("/rest/1/code/a b") == UNKNOWN_METHOD


def test_the_guard_counts_blocks_and_the_sources_blocked_now():
    guard = Guard(AbuseLimits(flood_requests=2, flood_block=10.0, auth_failures=2, auth_block=20.0))
    assert [guard.admit("192.0.2.1", 0.0) for _ in range(4)] == [True, True, False, False]
    assert guard.failed("192.0.2.2", "sip1", 1.0) is False
    assert guard.failed("192.0.2.2", "sip1", 2.0) is True
    assert guard.blocks == {"flood": 1, "auth_failures": 1}
    assert guard.blocked_sources(5.0) == 2
    assert guard.blocked_sources(15.0) == 1  # the flood block is over, the failures' one lasts 20 s
    assert guard.blocked_sources(30.0) == 0
