"""A running sipline's /metrics, read with prometheus_client's own parser (as Prometheus would)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families


def families(base_url: str) -> dict[str, Metric]:
    """Every family /metrics gives, by name (a counter's without `_total`, as the parser names it)."""
    response = httpx.get(f"{base_url}/metrics", timeout=10)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    return {family.name: family for family in text_string_to_metric_families(response.text)}


def samples(base_url: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """(sample name, its labels) → value."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in families(base_url).values()
        for sample in family.samples
    }


def value(base_url: str, name: str, **labels: str) -> float:
    """The sample `name` with exactly these labels; 0 when there is none (a histogram's label set not seen yet)."""
    return samples(base_url).get((name, frozenset(labels.items())), 0.0)


def by_label(base_url: str, name: str, label: str) -> dict[str, float]:
    """The samples of `name`, by the value of one label."""
    return {dict(labels)[label]: found for (sample, labels), found in samples(base_url).items() if sample == name}


DASHBOARD = Path(__file__).resolve().parents[1] / "docs" / "grafana-dashboard.json"
SUFFIXES = {"counter": ("_total",), "gauge": ("",), "histogram": ("_bucket", "_sum", "_count")}


def dashboard_queries(node: object = None) -> list[str]:
    """Every PromQL text of docs/grafana-dashboard.json: panel targets and template variable queries."""
    node = json.loads(DASHBOARD.read_text()) if node is None else node
    if isinstance(node, dict):
        texts = [value for key, value in node.items() if key in ("expr", "definition") and isinstance(value, str)]
        return texts + [text for value in node.values() for text in dashboard_queries(value)]
    if isinstance(node, list):
        return [text for value in node for text in dashboard_queries(value)]
    return []


def dashboard_metrics() -> set[str]:
    """The metric names the dashboard's queries use."""
    return {name for query in dashboard_queries() for name in re.findall(r"\bsipline_[a-z0-9_]+\b", query)}


def exposed_names(found: dict[str, Metric]) -> set[str]:
    """The sample names a scrape holds, and those its families' types give (a family may have no sample yet)."""
    return {sample.name for family in found.values() for sample in family.samples} | {
        name + suffix for name, family in found.items() for suffix in SUFFIXES.get(family.type, ("",))
    }
