"""One path per wire error on the HTTP side (docs/behaviour.md#rest-errors, docs/behaviour.md#oauth-token-errors):
what a request can end in becomes a RestError in `wire_error`, and `error_response` renders every one."""

from __future__ import annotations

import ast
import asyncio
import logging
from pathlib import Path

import orjson
import pytest
from starlette.requests import Request

from sipline.accounts import oauth
from sipline.rest.endpoint import wire_error
from sipline.rest.errors import (
    OAUTH_ERRORS,
    ArgumentError,
    DatabaseUnavailable,
    MethodNotFound,
    RestError,
    error_response,
)
from sipline.server.app import sip_worker_answer
from sipline.store.database import StoreUnavailable

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "sipline"
HEADERS = {
    "access-control-allow-origin": "*",
    "access-control-allow-headers": "origin, content-type, accept",
    "x-content-type-options": "nosniff",
}


@pytest.mark.parametrize(
    ("refusal", "status", "code", "description"),
    [
        (oauth.MalformedRequest("grant_type is missing"), 400, "invalid_request", "grant_type is missing"),
        (oauth.UnknownClient(), 401, "invalid_client", "Invalid client credentials"),
        (oauth.UnusableGrant("refresh token"), 400, "invalid_grant", "Invalid refresh token"),
        (oauth.ScopeTooWide(), 400, "invalid_scope", "The requested scope exceeds what the application has"),
        (oauth.PortalUnpaid(), 400, "PAYMENT_REQUIRED", "Payment required"),
    ],
)
def test_each_oauth_refusal_is_its_wire_error(refusal, status, code, description):
    error = wire_error(refusal, "/oauth/token/")
    assert (error.status, error.code, error.description) == (status, code, description)
    response = error_response(error)
    assert response.status_code == status
    assert response.body == orjson.dumps({"error": code, "error_description": description})


def test_every_oauth_refusal_has_a_row():
    assert set(OAUTH_ERRORS) == set(oauth.OAuthRefusal.__subclasses__())


def test_the_store_down_is_database_unavailable_with_one_warning_and_no_credential(caplog):
    with caplog.at_level(logging.WARNING, logger="sipline.rest"):
        error = wire_error(StoreUnavailable("connection refused"), "/rest/1/s3cretcode/voximplant.sip.get")
    assert isinstance(error, DatabaseUnavailable)
    assert (error.status, error.code) == (503, "DATABASE_UNAVAILABLE")
    assert error.description == "Database unreachable, try again"
    assert [record.getMessage() for record in caplog.records] == [
        "database unavailable for /rest/1/***/voximplant.sip.get: connection refused"
    ]


def test_the_store_down_becomes_database_unavailable_in_one_place():
    """Every answer for the store being down (REST, OAuth server, /healthz) is wire_error's."""
    made = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "DatabaseUnavailable":
                made.append(str(path.relative_to(PACKAGE)))
    assert made == ["rest/endpoint.py"]


def test_a_rest_error_is_its_own_answer_and_anything_else_a_logged_500(caplog):
    argument = ArgumentError("CONFIG_ID must be a number", argument="CONFIG_ID")
    assert wire_error(argument, "/rest/server.time") is argument
    with caplog.at_level(logging.ERROR, logger="sipline.rest"):
        error = wire_error(KeyError("bug"), "/rest/1/s3cretcode/profile")
    assert type(error) is RestError and (error.status, error.code) == (500, "INTERNAL_SERVER_ERROR")
    [record] = caplog.records
    assert record.getMessage() == "unexpected error in /rest/1/***/profile" and record.exc_info is not None


def test_error_response_is_the_envelope_in_json_and_in_xml():
    error = ArgumentError("CONFIG_ID must be a number", argument="CONFIG_ID")
    as_json = error_response(error)
    assert as_json.status_code == 400 and as_json.headers["content-type"] == "application/json; charset=utf-8"
    assert as_json.body == (
        b'{"error":"ERROR_ARGUMENT","error_description":"CONFIG_ID must be a number","argument":"CONFIG_ID"}'
    )
    as_xml = error_response(DatabaseUnavailable(), "xml")
    assert as_xml.status_code == 503 and as_xml.headers["content-type"] == "text/xml; charset=utf-8"
    assert as_xml.body == (
        b'<?xml version="1.0" encoding="utf-8"?><response><error>DATABASE_UNAVAILABLE</error>'
        b"<error_description>Database unreachable, try again</error_description></response>"
    )
    for response in (as_json, as_xml):
        assert {name: response.headers[name] for name in HEADERS} == HEADERS


def test_a_sip_worker_answers_the_404_envelope():
    request = Request({"type": "http", "method": "POST", "path": "/rest/server.time", "headers": []})
    response = asyncio.run(sip_worker_answer(request))
    assert response.status_code == 404
    assert orjson.loads(response.body) == {
        "error": MethodNotFound.code,
        "error_description": "This is a sip worker: the REST API is on the api processes",
    }
