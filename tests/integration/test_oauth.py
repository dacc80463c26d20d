"""OAuth 2.0 applications over real HTTP: install hand-off, codes, tokens, and every error row of
docs/behaviour.md#rest-oauth-token and docs/behaviour.md#oauth-server (docs/behaviour.md#oauth-apps, docs/behaviour.md#check-real-clients)."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.integration.operator import App, Handler, call, cli, cli_refused, error, fields
from tests.integration.server import SiplineProcess
from tests.stores import execute

TOKEN_KEYS = {"access_token": str, "refresh_token": str, "expires": int, "expires_in": int, "scope": str,
              "domain": str, "server_endpoint": str, "client_endpoint": str, "member_id": str, "status": str,
              "user_id": int}


@pytest.fixture
def server(tmp_path):
    process = SiplineProcess(tmp_path / "data", "--oauth-listen", "127.0.0.1:0").start()
    yield process
    process.stop()


@pytest.fixture
def handler():
    recorder = Handler()
    yield recorder
    recorder.close()



def test_install_hand_off_reaches_the_handler_with_working_tokens(server, handler):
    app = App(server, "--handler", handler.url)
    assert app.installed == "yes (handler answered 200)"
    [(content_type, form)] = handler.received
    assert content_type == "application/x-www-form-urlencoded"
    assert form["event"] == ["ONAPPINSTALL"] and form["data[INSTALLED]"] == ["Y"]
    auth = {key[5:-1]: value[0] for key, value in form.items() if key.startswith("auth[")}
    assert auth["domain"] == "127.0.0.1" and auth["client_endpoint"] == f"http://127.0.0.1:{server.port}/rest/"
    assert auth["server_endpoint"] == f"http://127.0.0.1:{server.oauth_port}/rest/"
    assert {"access_token", "refresh_token", "expires_in", "scope", "member_id", "status", "application_token",
            "expires", "user_id"} <= auth.keys()
    response = call(server, "voximplant.sip.connector.status", params={"auth": auth["access_token"]})
    assert response.status_code == 200, response.text


def test_authorize_sends_the_browser_to_the_consent_page_with_the_same_query(server, handler):
    """docs/behaviour.md#oauth-consent: every tolerated spelling of the path, on the main listener (a
    path of the same address) and on --oauth-listen's (the portal's address)."""
    app = App(server, "--handler", handler.url)
    query = f"client_id={app.client_id}&state=x%20y&user_id=7"
    for path in ("/oauth/authorize/", "/oauth/authorize", "//oauth/authorize/"):
        response = httpx.get(f"http://127.0.0.1:{server.port}{path}?{query}")
        assert (response.status_code, response.headers["location"]) == (303, f"/ui/oauth/authorize?{query}")
    response = httpx.get(f"http://127.0.0.1:{server.oauth_port}/oauth/authorize/?{query}")
    assert response.status_code == 303
    assert response.headers["location"] == f"http://127.0.0.1:{server.port}/ui/oauth/authorize?{query}"
    assert httpx.get(f"http://127.0.0.1:{server.port}/oauth/authorize/").headers["location"] == "/ui/oauth/authorize"
    assert not handler.received[1:]  # nothing but the install hand-off reached the handler


def test_app_authorize_prints_a_one_time_code_and_the_handler_query(server, handler):
    """docs/behaviour.md#oauth-consent: `sipline app authorize` gives the code to the operator, not to the handler."""
    app = App(server, "--handler", handler.url)
    clerk = cli(server.data_dir, "user", "create", "--name", "Clerk")
    printed = fields(cli(server.data_dir, "app", "authorize", "--client-id", app.client_id, "--user", clerk))
    assert list(printed) == ["code", "domain", "member_id", "scope", "server_domain"]
    assert printed["domain"] == "127.0.0.1" and printed["scope"] == "telephony" and len(printed["member_id"]) == 32
    assert printed["server_domain"] == f"127.0.0.1:{server.oauth_port}"
    assert len(handler.received) == 1  # the install hand-off only
    first = app.token(grant_type="authorization_code", code=printed["code"])
    assert first.status_code == 200 and first.json()["user_id"] == int(clerk)
    assert error(app.token(grant_type="authorization_code", code=printed["code"])) == (400, "invalid_grant")


def test_app_authorize_refuses_whom_the_app_does_not_allow(server):
    """docs/behaviour.md#oauth-consent: one rule for the consent page and the command."""
    clerk = cli(server.data_dir, "user", "create", "--name", "Clerk")
    gone = cli(server.data_dir, "user", "create", "--name", "Gone")
    cli(server.data_dir, "user", "deactivate", "--user", gone)
    restricted = App(server, "--users", clerk)

    def refused(*args: str) -> str:
        return cli_refused(server.data_dir, "app", "authorize", "--client-id", restricted.client_id, *args)

    assert "user 1 cannot authorize" in refused() and "does not have access" in refused("--user", "1")
    assert "no user 99 on this portal" in refused("--user", "99").lower()
    assert restricted.code(user=int(clerk))
    open_app = App(server)
    assert "deactivated" in cli_refused(server.data_dir, "app", "authorize", "--client-id", open_app.client_id,
                                        "--user", gone)
    cli(server.data_dir, "app", "uninstall", "--client-id", open_app.client_id)
    assert "no app" in cli_refused(server.data_dir, "app", "authorize", "--client-id", open_app.client_id)
    assert "no app" in cli_refused(server.data_dir, "app", "authorize", "--client-id", "local.nope")


@pytest.mark.parametrize("path", ["/oauth/token/", "/oauth/token", "//oauth/token/"])
def test_token_endpoint_forms(server, path):
    app = App(server)
    params = {"grant_type": "authorization_code", "client_id": app.client_id, "client_secret": app.client_secret}
    for base in (f"http://127.0.0.1:{server.port}", f"http://127.0.0.1:{server.oauth_port}"):
        by_get = httpx.get(base + path, params={**params, "code": app.code(), "bx24_request_id": "r1"})
        by_post = httpx.post(base + path, data={**params, "code": app.code()})
        for response in (by_get, by_post):
            assert response.status_code == 200, response.text
            body = response.json()
            assert {key: type(value) for key, value in body.items()} == TOKEN_KEYS
            assert body["expires"] - int(time.time()) in range(3590, 3601) and body["expires_in"] == 3600
            assert body["client_endpoint"] == f"http://127.0.0.1:{server.port}/rest/"
            assert body["domain"] == f"127.0.0.1:{server.oauth_port}" and body["status"] == "L"


def test_the_access_token_works_from_header_auth_or_access_token(server):
    token = App(server).tokens()["access_token"]
    sources = [
        {"headers": {"Authorization": f"Bearer {token}"}},
        {"params": {"auth": token}},
        {"data": {"auth": token}},
        {"json": {"auth": token}},
        {"params": {"access_token": token}},
    ]
    for source in sources:
        response = call(server, "profile", **source)
        assert response.status_code == 200 and response.json()["result"]["ID"] == "1", (source, response.text)


def test_refresh_rotates_and_the_old_access_token_lives_on(server):
    app = App(server)
    first = app.tokens()
    second = app.token(grant_type="refresh_token", refresh_token=first["refresh_token"])
    assert second.status_code == 200
    renewed = second.json()
    assert renewed["access_token"] != first["access_token"] and renewed["refresh_token"] != first["refresh_token"]
    assert error(app.token(grant_type="refresh_token", refresh_token=first["refresh_token"])) == (400, "invalid_grant")
    for token in (first["access_token"], renewed["access_token"]):
        assert call(server, "profile", params={"auth": token}).status_code == 200
    assert app.token(grant_type="refresh_token", refresh_token=renewed["refresh_token"]).status_code == 200


def test_token_endpoint_errors(server):
    app = App(server)
    code = app.code()
    cases = [
        ({"client_id": app.client_id, "client_secret": app.client_secret, "code": code}, 400, "invalid_request"),
        ({"grant_type": "password", "client_id": app.client_id, "client_secret": app.client_secret}, 400,
         "invalid_request"),
        ({"grant_type": "authorization_code", "client_id": app.client_id, "code": code}, 400, "invalid_request"),
        ({"grant_type": "authorization_code", "client_id": app.client_id, "client_secret": "wrong", "code": code},
         401, "invalid_client"),
        ({"grant_type": "authorization_code", "client_id": "local.nope", "client_secret": "x", "code": code}, 401,
         "invalid_client"),
        ({"grant_type": "refresh_token", "client_id": app.client_id, "client_secret": app.client_secret,
          "refresh_token": "bogus"}, 400, "invalid_grant"),
        ({"grant_type": "authorization_code", "client_id": app.client_id, "client_secret": app.client_secret,
          "code": code, "scope": "telephony,crm"}, 400, "invalid_scope"),
    ]
    for params, status, code_name in cases:
        response = httpx.get(f"http://127.0.0.1:{server.port}/oauth/token/", params=params)
        assert error(response) == (status, code_name), params
        assert response.json()["error_description"]
    assert app.token(grant_type="authorization_code", code=code).status_code == 200  # the code was not spent

    execute(server.data_dir, "UPDATE portal SET paid = false")
    assert error(app.token(grant_type="authorization_code", code=app.code())) == (400, "PAYMENT_REQUIRED")
    execute(server.data_dir, "UPDATE portal SET paid = true")
    cli(server.data_dir, "app", "uninstall", "--client-id", app.client_id)
    assert error(app.token(grant_type="authorization_code", code="x")) == (401, "invalid_client")


def test_method_call_auth_errors_in_order(server, handler):
    app = App(server)
    scoped = App(server, "--scope", "user")
    clerk = cli(server.data_dir, "user", "create", "--name", "Clerk", "--numbers-modify")
    # user 1 gets no code for an app of other users (docs/behaviour.md#oauth-consent), but the install
    # hand-off gives the portal's admin tokens, which its calls refuse
    restricted = App(server, "--users", clerk, "--handler", handler.url)
    tokens = {name: each.tokens()["access_token"] for name, each in (("app", app), ("scoped", scoped))}
    tokens["restricted"] = handler.received[0][1]["auth[access_token]"][0]
    clerk_token = restricted.tokens(user=int(clerk))["access_token"]
    cases = [
        ({}, 401, "NO_AUTH_FOUND"),
        ({"auth": "not-a-token"}, 401, "invalid_token"),
        ({"auth": tokens["scoped"]}, 403, "insufficient_scope"),
        ({"auth": tokens["restricted"]}, 403, "user_access_error"),
    ]
    for params, status, code in cases:
        response = call(server, "voximplant.sip.get", params=params)
        assert error(response) == (status, code), params
    assert call(server, "voximplant.sip.get", params={"auth": clerk_token}).status_code == 200
    assert "access token" in call(server, "voximplant.sip.get",
                                  params={"auth": tokens["scoped"]}).json()["error_description"]

    cli(server.data_dir, "user", "deactivate", "--user", clerk)
    assert error(call(server, "voximplant.sip.get", params={"auth": clerk_token})) == (401, "authorization_error")
    cli(server.data_dir, "app", "uninstall", "--client-id", app.client_id)
    assert error(call(server, "profile", params={"auth": tokens["app"]})) == (401, "APPLICATION_NOT_FOUND")
    cli(server.data_dir, "app", "install", "--client-id", app.client_id)
    assert call(server, "profile", params={"auth": tokens["app"]}).status_code == 200


def test_an_expired_access_token(tmp_path):
    server = SiplineProcess(tmp_path / "data", "--access-token-lifetime", "1").start()
    try:
        app = App(server)
        tokens = app.tokens()
        time.sleep(max(0.0, tokens["expires"] - time.time()) + 0.05)
        assert error(call(server, "profile", params={"auth": tokens["access_token"]})) == (401, "expired_token")
        renewed = app.token(grant_type="refresh_token", refresh_token=tokens["refresh_token"]).json()
        assert call(server, "profile", params={"auth": renewed["access_token"]}).status_code == 200
    finally:
        server.stop()


def test_lines_of_an_app_are_its_own(server):
    first, second = App(server), App(server)
    tokens_1 = first.tokens()
    token_1, token_2 = tokens_1["access_token"], second.tokens()["access_token"]
    # one app's code and refresh token are worthless to another, and stay good for their own app
    assert error(second.token(grant_type="refresh_token", refresh_token=tokens_1["refresh_token"])) == (
        400, "invalid_grant")
    code_1 = first.code()
    assert error(second.token(grant_type="authorization_code", code=code_1)) == (400, "invalid_grant")
    assert first.token(grant_type="authorization_code", code=code_1).status_code == 200
    assert first.token(grant_type="refresh_token", refresh_token=tokens_1["refresh_token"]).status_code == 200
    body = {"TYPE": "cloud", "TITLE": "app line", "SERVER": "sip.example.invalid", "LOGIN": "1", "PASSWORD": "p"}
    line = call(server, "voximplant.sip.add", json={**body, "auth": token_1}).json()["result"]

    def as_second(method: str, **params):
        return call(server, method, json={**params, "auth": token_2})

    assert as_second("voximplant.sip.get").json()["result"] == []
    assert error(as_second("voximplant.sip.update", CONFIG_ID=line["CONFIG_ID"], TITLE="x")) == (404, "ERROR_NOT_FOUND")
    assert error(as_second("voximplant.sip.delete", CONFIG_ID=line["CONFIG_ID"]))[1] == "ERROR_NOT_FOUND"
    assert error(as_second("voximplant.sip.status", REG_ID=line["REG_ID"]))[1] == "REG_ID_NOT_FOUND"
    assert httpx.post(server.webhook + "voximplant.sip.get").json()["result"] == []  # nor do webhooks see it
    assert [row["CONFIG_ID"] for row in call(server, "voximplant.sip.get", json={"auth": token_1}).json()["result"]] == [
        line["CONFIG_ID"]]
    info = call(server, "app.info", json={"auth": token_1}).json()["result"]
    assert info["CODE"] == first.client_id and info["INSTALLED"] is True and info["STATUS"] == "L"


def test_oauth_side_app_info_on_its_own_listener(server):
    app = App(server)
    token = app.tokens()["access_token"]
    response = httpx.get(f"http://127.0.0.1:{server.oauth_port}/rest/app.info/", params={"auth": token})
    assert response.status_code == 200, response.text
    result = response.json()["result"]
    assert result["client_id"] == app.client_id and result["user_id"] == 1 and result["scope"] == "telephony"
    assert result["install"]["installed"] is True and result["install"]["member_id"]
    assert response.json()["time"]["duration"] >= 0
    bad = httpx.get(f"http://127.0.0.1:{server.oauth_port}/rest/app.info/", params={"auth": "nope"})
    assert error(bad) == (401, "invalid_token")
    portal_side = call(server, "app.info", params={"auth": token}).json()["result"]
    assert portal_side["CODE"] == app.client_id  # the portal's own app.info differs


def test_app_list_and_fields_of_create(server):
    app = App(server, "--scope", "telephony,user")
    listed = cli(server.data_dir, "app", "list")
    assert listed.splitlines()[0].split() == ["CLIENT_ID", "NAME", "SCOPE", "STATE"]
    assert listed.splitlines()[1].split() == [app.client_id, "test", "app", "telephony,user", "installed"]
    assert app.client_secret not in listed
    assert fields(f"client_id: {app.client_id}")["client_id"].startswith("local.")
