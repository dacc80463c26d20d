"""Arbitrary parameters at every method: always an answer in the wire format, never a 5xx."""

from __future__ import annotations

from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sipline.rest.registry import METHODS
from tests.integration.server import SiplineProcess

NAMES = ["TYPE", "TITLE", "SERVER", "LOGIN", "PASSWORD", "CONFIG_ID", "REG_ID", "FILTER", "SORT", "ORDER", "start",
         "LINE_ID", "filter", "config_id", "auth", "state"]
FILTER_KEYS = st.sampled_from(["", "!", "=", ">", "<=", "><", "!><", "%", "!%", "?", "@", "~", "!!"]).flatmap(
    lambda op: st.sampled_from(["CONFIG_ID", "TITLE", "REG_ID", "PASSWORD", "APP_ID", "NOPE", ""]).map(
        lambda field: op + field
    )
)
scalars = (st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False, allow_infinity=False)
           | st.text(max_size=30) | st.sampled_from(["cloud", "office", "sip.example.invalid", "ASC", "DESC", "1"]))
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(FILTER_KEYS | st.text(max_size=8), inner, max_size=4),
    max_leaves=10,
)
params = st.dictionaries(st.sampled_from(NAMES) | st.text(max_size=10), values, max_size=7)


@pytest.fixture(scope="module")
def webhook(tmp_path_factory):
    process = SiplineProcess(tmp_path_factory.mktemp("fuzz"), "--max-cloud-lines", "1000").start()
    yield process.webhook
    process.stop()


@pytest.fixture(scope="module")
def client():
    with httpx.Client(timeout=10) as http:
        yield http


def check(response: httpx.Response) -> None:
    assert response.status_code < 500, response.text
    assert response.headers["content-type"].startswith(("application/json", "text/xml"))
    if response.headers["content-type"].startswith("application/json"):
        body = response.json()
        assert ("result" in body and "time" in body) or ("error" in body and "error_description" in body)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(method=st.sampled_from(sorted(METHODS)), body=params)
def test_json_parameters(webhook, client, method, body):
    check(client.post(webhook + method, json=body))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(method=st.sampled_from(sorted(METHODS)), query=st.binary(max_size=120),
       content_type=st.sampled_from(["application/x-www-form-urlencoded", "application/json", "multipart/form-data",
                                     "multipart/form-data; boundary=b", "text/plain", ""]))
def test_raw_bodies_and_query_strings(webhook, client, method, query, content_type):
    check(client.post(webhook + method, content=query, headers={"content-type": content_type}))
    check(client.get(webhook + method + "?" + quote(query, safe="=&[]%+")))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=0x2FF, exclude_characters="?#\x7f",
                                          exclude_categories=["Cc"]),
                    max_size=60))
def test_arbitrary_paths(webhook, client, path):
    base = webhook.split("/rest/")[0]
    check(client.get(f"{base}/rest/{path}"))
    check(client.post(f"{webhook}{path}"))
