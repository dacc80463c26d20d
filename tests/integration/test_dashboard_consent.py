"""The OAuth consent page over real HTTP (docs/behaviour.md#oauth-consent): `/oauth/authorize/` leads to it,
only a signed-in user of the portal can allow, the code is that user's whatever the query says, a change
needs the session's CSRF token, Deny tells the handler, an unknown client_id is a 400 page."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.integration.dashboard import csrf, link, signed_in
from tests.integration.operator import App, Handler, cli, error
from tests.integration.server import SiplineProcess
from tests.stores import execute

CONSENT = "/ui/oauth/authorize"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    process = SiplineProcess(tmp_path_factory.mktemp("consent") / "data").start()
    yield process
    process.stop()


@pytest.fixture
def handler():
    recorder = Handler()
    yield recorder
    recorder.close()


@pytest.fixture(scope="module")
def clerk(server) -> int:
    """A user with no right at all: consenting needs none."""
    return int(cli(server.data_dir, "user", "create", "--name", "Clerk"))


@pytest.fixture
def session(server, clerk):
    with signed_in(server, link(server, "--user", str(clerk))) as client:
        yield client


@pytest.fixture
def token(session) -> str:
    """The session's CSRF token, as its pages carry it."""
    return csrf(session.get("/ui/"))


def codes(server: SiplineProcess) -> int:
    return execute(server.data_dir, "SELECT count(*) FROM oauth_code")[0][0]


def query_of(location: str) -> dict[str, str]:
    return {name: values[0] for name, values in parse_qs(urlsplit(location).query).items()}


def test_allow_gives_the_signed_in_user_a_code_whatever_user_id_says(server, handler, session, clerk, token):
    app = App(server, "--name", "Dialer", "--scope", "telephony,user", "--handler", handler.url)
    asked = session.get("/oauth/authorize/", params={"client_id": app.client_id, "state": "xyz", "user_id": "1"})
    assert asked.status_code == 303 and asked.headers["location"].startswith(CONSENT + "?")
    page = session.get(asked.headers["location"])
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    for shown in ("Dialer", app.client_id, "telephony", "user", 'value="allow"', 'value="deny"', token,
                  'name="state" value="xyz"'):
        assert shown in page.text, shown
    assert "form-action 'self' http://127.0.0.1:" in page.headers["content-security-policy"]  # may go on there

    allowed = session.post(CONSENT, data={"csrf": token, "client_id": app.client_id, "state": "xyz",
                                          "user_id": "1", "decision": "allow"})
    assert allowed.status_code == 302
    location = urlsplit(allowed.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == handler.url
    answer = query_of(allowed.headers["location"])
    assert list(answer) == ["code", "state", "domain", "member_id", "scope", "server_domain"]
    assert (answer["state"], answer["domain"], answer["scope"]) == ("xyz", "127.0.0.1", "telephony,user")
    assert answer["server_domain"] == f"127.0.0.1:{server.port}" and len(answer["member_id"]) == 32
    tokens = app.token(grant_type="authorization_code", code=answer["code"])
    assert tokens.status_code == 200 and tokens.json()["user_id"] == clerk  # not user 1
    assert error(app.token(grant_type="authorization_code", code=answer["code"])) == (400, "invalid_grant")
    assert len(handler.received) == 1  # the install hand-off; the code went by the browser


def test_allow_without_a_handler_answers_the_code_as_json(server, session, clerk, token):
    app = App(server)
    allowed = session.post(CONSENT, data={"csrf": token, "client_id": app.client_id, "decision": "allow"})
    assert allowed.status_code == 200 and allowed.headers["content-type"].startswith("application/json")
    body = allowed.json()
    assert set(body) == {"code", "state", "domain", "member_id", "scope", "server_domain"} and body["state"] == ""
    assert app.token(grant_type="authorization_code", code=body["code"]).json()["user_id"] == clerk


def test_without_a_session_the_signed_out_page_and_no_code(server):
    app, before = App(server), codes(server)
    with httpx.Client(base_url=server.base_url) as anonymous:
        page = anonymous.get("/oauth/authorize/", params={"client_id": app.client_id, "user_id": "1"},
                             follow_redirects=True)
        assert page.status_code == 401 and "sipline dashboard-link" in page.text
        assert app.client_id not in page.text
        posted = anonymous.post(CONSENT, data={"client_id": app.client_id, "decision": "allow"})
        assert posted.status_code == 401 and "code" not in posted.headers.get("location", "")
    forged = httpx.post(server.base_url + CONSENT, data={"client_id": app.client_id, "decision": "allow"},
                        headers={"Cookie": "sipline_session=forged"})
    assert forged.status_code == 401
    assert codes(server) == before


def test_allow_without_the_csrf_token_is_refused_and_gives_no_code(server, session, token):
    app, before = App(server), codes(server)
    for given in ({}, {"csrf": ""}, {"csrf": "not-the-token"}, {"csrf": "\x80é"}):
        refused = session.post(CONSENT, data={**given, "client_id": app.client_id, "decision": "allow"})
        assert refused.status_code == 403 and "CSRF" in refused.text, given
    assert codes(server) == before


def test_deny_tells_the_handler_or_says_so(server, handler, session, token):
    with_handler, without, before = App(server, "--handler", handler.url), App(server), codes(server)
    denied = session.post(CONSENT, data={"csrf": token, "client_id": with_handler.client_id,
                                         "state": "s 1", "decision": "deny"})
    assert denied.status_code == 302 and denied.headers["location"].startswith(handler.url + "?")
    assert query_of(denied.headers["location"]) == {"error": "access_denied", "state": "s 1"}
    page = session.post(CONSENT, data={"csrf": token, "client_id": without.client_id, "decision": "deny"})
    assert page.status_code == 200 and "Not authorized" in page.text
    assert codes(server) == before


def test_an_unknown_client_id_is_a_400_page(server, session, token):
    cli(server.data_dir, "portal", "create", "--domain", "b.example")
    other_portal = App(server, "--portal", "b.example")
    uninstalled = App(server)
    cli(server.data_dir, "app", "uninstall", "--client-id", uninstalled.client_id)
    for client_id in ("local.nope", "", other_portal.client_id, uninstalled.client_id):
        page = session.get(CONSENT, params={"client_id": client_id})
        assert page.status_code == 400 and page.headers["content-type"].startswith("text/html"), client_id
        assert "Unknown application" in page.text
        allowed = session.post(CONSENT, data={"csrf": token, "client_id": client_id, "decision": "allow"})
        assert allowed.status_code == 400 and "location" not in allowed.headers, client_id


def test_a_user_the_app_does_not_allow_cannot_consent(server, session, clerk, token):
    others = App(server, "--users", "1")
    page = session.get(CONSENT, params={"client_id": others.client_id})
    assert page.status_code == 403 and "does not have access" in page.text
    refused = session.post(CONSENT, data={"csrf": token, "client_id": others.client_id, "decision": "allow"})
    assert refused.status_code == 403
    mine = App(server, "--users", f"1,{clerk}")
    assert session.get(CONSENT, params={"client_id": mine.client_id}).status_code == 200
