"""The pure rules of deliveries (docs/behaviour.md#event-delivery, #event-payload, #event-signature)."""

from __future__ import annotations

from urllib.parse import parse_qsl

import pytest

from sipline.events.payload import form_body, wire_data
from sipline.events.retry import RetrySchedule
from sipline.events.signature import signature, verified


def test_retries_double_from_the_first_wait_within_the_jitter_and_stop_at_the_longest():
    schedule = RetrySchedule(first=5, longest=3600, retry_for=86400)
    for uniform in (lambda a, b: a, lambda a, b: b):
        waits = [schedule.next_at(n, 0.0, 100.0, uniform) - 100.0 for n in range(1, 14)]
        low = uniform(0.8, 1.2)
        assert waits[:4] == pytest.approx([5 * low, 10 * low, 20 * low, 40 * low])
        assert max(waits) == 3600 and all(w <= 3600 for w in waits)
    assert schedule.next_at(40, 0.0, 86399.0, lambda a, b: 1.0) == 86399.0 + 3600  # a huge count does not overflow


def test_a_delivery_is_given_up_once_its_time_is_over():
    schedule = RetrySchedule(first=5, longest=60, retry_for=100)
    assert schedule.next_at(3, 1000.0, 1099.0, lambda a, b: 1.0) is not None
    assert schedule.next_at(3, 1000.0, 1100.0, lambda a, b: 1.0) is None


def test_the_form_is_bitrix24s_in_its_order_and_php_bracket_keys():
    data = wire_data({"CONFIG_ID": 3, "LAST_UPDATED": 0.0, "ERROR_MESSAGE": "a&b=c"}, lambda t: f"at {t:g}")
    body = form_body("ONSIPLINEREGISTRATIONCHANGE", 7, data, 1767000000, {"domain": "p.example", "user_id": 1})
    assert body.startswith("event=ONSIPLINEREGISTRATIONCHANGE&event_handler_id=7&data%5BCONFIG_ID%5D=3&")
    assert parse_qsl(body) == [("event", "ONSIPLINEREGISTRATIONCHANGE"), ("event_handler_id", "7"),
                               ("data[CONFIG_ID]", "3"), ("data[LAST_UPDATED]", "at 0"),
                               ("data[ERROR_MESSAGE]", "a&b=c"), ("ts", "1767000000"),
                               ("auth[domain]", "p.example"), ("auth[user_id]", "1")]


def test_the_signature_is_hmac_sha256_of_time_dot_body_and_verifies_only_unchanged():
    header = signature("key", "event=X", 1700000000)
    assert header == "t=1700000000,v1=" + __import__("hmac").new(b"key", b"1700000000.event=X", "sha256").hexdigest()
    assert verified("key", header, "event=X")
    assert not verified("key", header, "event=Y") and not verified("other", header, "event=X")
    assert not verified("key", "v1=00", "event=X")


