"""The log formats of `serve` (docs/behaviour.md#logs): text with key=value context, JSON lines with the
required keys, the choice by where stderr goes, and the filter that masks what could be a credential."""

from __future__ import annotations

import io
import logging
import os
import re

import orjson
import pytest

from sipline.server.logs import chosen_format, configure, mask
from sipline.server.settings import settings_from

CODE = "k3x9q2v7w1z8m4n6"  # a webhook code, as portal create makes them
ISO_MS_OFFSET = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d\Z")
LINE_FIELDS = {"config_id": 12, "portal": "a.example", "code": 403, "reason": "Forbidden by policy",
               "cause": "challenge refused", "provider": "sip:sip.example.com"}


@pytest.fixture
def logged():
    """What records on a test logger come out as, through serve's handler; the root's own handlers put back."""
    root = logging.getLogger()
    before, level = root.handlers[:], root.level
    stream = io.StringIO()

    def configured(log_format: str) -> tuple[logging.Logger, io.StringIO]:
        configure("info", log_format, stream)
        return logging.getLogger("sipline.test"), stream

    yield configured
    root.handlers[:], root.level = before, level


def raise_with(text: str) -> None:
    raise RuntimeError(text)


def test_a_json_line_has_the_keys_and_the_context_fields(logged):
    log, stream = logged("json")
    log.warning("line %d (portal %s): error %d", 12, "a.example", 403, extra=LINE_FIELDS)
    log.info("no fields here", extra={"reason": "", "contact": None})
    first, second = (orjson.loads(line) for line in stream.getvalue().splitlines())
    assert ISO_MS_OFFSET.match(first.pop("time"))
    assert first == {"level": "WARNING", "logger": "sipline.test", "message": "line 12 (portal a.example): error 403",
                     **LINE_FIELDS}
    assert set(second) == {"time", "level", "logger", "message"}  # empty fields are left out


def test_an_exception_is_one_json_line_with_its_traceback_in_exc(logged):
    log, stream = logged("json")
    try:
        raise_with("boom")
    except RuntimeError:
        log.exception("unexpected error in %s", "/healthz")
    [line] = stream.getvalue().splitlines()
    entry = orjson.loads(line)
    assert entry["level"] == "ERROR" and entry["message"] == "unexpected error in /healthz"
    assert entry["exc"].startswith("Traceback (most recent call last):")
    assert entry["exc"].endswith("RuntimeError: boom") and "raise_with" in entry["exc"]


def test_text_appends_the_context_fields_as_key_value_before_a_traceback(logged):
    log, stream = logged("text")
    try:
        raise_with("boom")
    except RuntimeError:
        log.error("line %d failed", 12, exc_info=True, extra=LINE_FIELDS)
    first, *rest = stream.getvalue().splitlines()
    assert re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} ERROR sipline.test: line 12 failed ", first)
    assert first.endswith(' portal=a.example config_id=12 code=403 reason="Forbidden by policy" '
                          'cause="challenge refused" provider=sip:sip.example.com')
    assert rest[0] == "Traceback (most recent call last):" and rest[-1] == "RuntimeError: boom"


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_no_webhook_code_digest_response_or_password_reaches_the_output(logged, log_format):
    log, stream = logged(log_format)
    log.info("request %s", f"/rest/1/{CODE}/voximplant.sip.get")
    log.info("proxied %s", f"https://b24.example/b24/REST/1/{CODE}/x")
    log.warning('Authorization: Digest username="100", nonce="n1", response="6629fae49393a05397450978507c4ef1", '
                'cnonce="0a4f113b", qop=auth')
    log.info("params %s", {"LOGIN": "100", "PASSWORD": "hunter2-pass"}, extra={"reason": f"/rest/7/{CODE}/"})
    log.info("store at postgresql://sipline:db-pass-77@db.example/sipline")
    try:
        raise_with(f"failed on /rest/1/{CODE}/server.time with password=hunter3-pass")
    except RuntimeError:
        log.exception("unexpected")
    out = stream.getvalue()
    for secret in (CODE, "6629fae49393a05397450978507c4ef1", "0a4f113b", "hunter2-pass", "db-pass-77",
                   "hunter3-pass"):
        assert secret not in out
    assert "/rest/1/***/voximplant.sip.get" in out and "/REST/1/***/x" in out
    assert "nonce" in out and "username" in out  # only the secret values go


def test_mask_keeps_what_carries_no_secret():
    for text in ("/rest/server.time", "/rest/app.info", "line 12 (portal a.example): error 403 Forbidden (dns)",
                 "/healthz", "http://127.0.0.1:8080/oauth/token/", "restart/rest"):
        assert mask(text) == text
    assert mask(f"/rest/1/{CODE}/") == "/rest/1/***/"
    assert mask('response="abc", cnonce=def') == 'response="…", cnonce=…'
    assert mask("'PASSWORD': 'x y'") == "'PASSWORD': '…'"


def test_a_bad_format_string_does_not_raise_from_the_log_call(logged, capsys):
    log, stream = logged("json")
    log.info("%d lines", "not a number")  # the handler reports it on stderr, as logging does
    assert stream.getvalue() == "" and "--- Logging error ---" in capsys.readouterr().err


def test_the_default_is_text_on_a_terminal_and_json_elsewhere():
    leader, follower = os.openpty()
    with open(follower, "w") as terminal, open(leader, "rb", buffering=0):
        assert chosen_format(None, terminal) == "text"
        assert chosen_format("json", terminal) == "json"
    assert chosen_format(None, io.StringIO()) == "json"
    assert chosen_format("text", io.StringIO()) == "text"


def test_the_variable_and_its_empty_value():
    assert settings_from({"log_format": None}, {"SIPLINE_LOG_FORMAT": "JSON"}).log_format == "json"
    assert settings_from({"log_format": None}, {"SIPLINE_LOG_FORMAT": ""}).log_format is None
    assert settings_from({"log_format": "text"}, {"SIPLINE_LOG_FORMAT": "json"}).log_format == "text"
