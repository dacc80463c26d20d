"""event.bind, event.unbind, event.get and events over raw HTTP against a real server (docs/behaviour.md#event-names,
docs/behaviour.md#event-bind): webhooks and OAuth apps, who may bind what, handler URLs, errors."""

from __future__ import annotations

import httpx
import pytest

from tests.integration.operator import App, call, cli, error, result
from tests.integration.server import SiplineProcess

REG, BIND, UNINSTALL = "OnSiplineRegistrationChange", "OnSiplineBindingChange", "OnAppUninstall"
HOOK = "http://127.0.0.1:9/events"  # never posted to here: nothing in these tests changes a line


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """Handler URLs may lead to loopback here (--allow-private-targets)."""
    process = SiplineProcess(tmp_path_factory.mktemp("events") / "data", "--allow-private-targets").start()
    yield process
    process.stop()


@pytest.fixture(scope="module")
def strict(tmp_path_factory):
    """The default: handler URLs lead only to globally reachable addresses."""
    process = SiplineProcess(tmp_path_factory.mktemp("strict") / "data").start()
    yield process
    process.stop()


def hook(server: SiplineProcess, method: str, **body) -> httpx.Response:
    return httpx.post(server.webhook + method, json=body)


def webhook_of(server: SiplineProcess, user: str, scope: str = "telephony") -> str:
    return cli(server.data_dir, "webhook", "create", "--user", user, "--scope", scope)


def as_app(server: SiplineProcess, token: str, method: str, **body) -> httpx.Response:
    return call(server, method, json={"auth": token, **body})


def bound(response: httpx.Response) -> None:
    assert response.status_code == 200 and response.json()["result"] is True, response.text


def test_an_admin_webhook_binds_gets_and_unbinds(server):
    bound(hook(server, "event.bind", event=REG.lower(), handler=HOOK + "/a"))
    bound(hook(server, "event.bind", EVENT=BIND, HANDLER=HOOK + "/a", AUTH_TYPE=3))
    bound(hook(server, "event.bind", event=REG, event_type="offline"))
    rows = result(hook(server, "event.get"))
    assert rows == [
        {"event": "ONSIPLINEREGISTRATIONCHANGE", "handler": HOOK + "/a", "auth_type": "0", "offline": 0,
         "failing": False, "failing_since": None, "last_error": None},
        {"event": "ONSIPLINEBINDINGCHANGE", "handler": HOOK + "/a", "auth_type": "3", "offline": 0,
         "failing": False, "failing_since": None, "last_error": None},
        {"event": "ONSIPLINEREGISTRATIONCHANGE", "connector_id": "", "offline": 1},
    ]
    duplicate = hook(server, "event.bind", event="ONSIPLINEregistrationCHANGE", handler=HOOK + "/a")
    assert error(duplicate) == (400, "ERROR_CORE")
    assert duplicate.json()["error_description"] == "Unable to set event handler: Handler already binded"
    assert error(hook(server, "event.bind", event=REG, event_type="OFFLINE")) == (400, "ERROR_CORE")

    assert result(hook(server, "event.unbind", event=REG, handler=HOOK + "/a")) == {"count": 1}
    assert result(hook(server, "event.unbind", event=BIND, handler=HOOK + "/a", auth_type=0)) == {"count": 0}
    assert result(hook(server, "event.unbind", event=BIND, handler=HOOK + "/a", auth_type=3)) == {"count": 1}
    assert result(hook(server, "event.unbind", event=REG, event_type="offline")) == {"count": 1}
    assert result(hook(server, "event.get")) == []


def test_unbind_widens_to_every_auth_type_for_an_admin(server):
    for auth_type in (0, 1, 2):
        bound(hook(server, "event.bind", event=BIND, handler=HOOK + "/wide", auth_type=auth_type))
    bound(hook(server, "event.bind", event=REG, handler=HOOK + "/wide"))
    assert result(hook(server, "event.unbind", event=BIND, handler=HOOK + "/other")) == {"count": 0}
    assert result(hook(server, "event.unbind", event=BIND, handler=HOOK + "/wide")) == {"count": 3}
    assert [row["event"] for row in result(hook(server, "event.get"))] == ["ONSIPLINEREGISTRATIONCHANGE"]
    assert result(hook(server, "event.unbind", event=REG, handler=HOOK + "/wide")) == {"count": 1}


def test_a_non_admin_webhook_gets_access_denied(server):
    clerk = cli(server.data_dir, "user", "create", "--name", "Clerk", "--numbers-modify")
    webhook = webhook_of(server, clerk)
    for method, body in [("event.bind", {"event": REG, "handler": HOOK}), ("event.unbind", {"event": REG}),
                         ("event.get", {}), ("event.offline.get", {}), ("event.offline.list", {}),
                         ("event.offline.clear", {"process_id": "x"}), ("event.offline.error", {})]:
        response = httpx.post(webhook + method, json=body)
        assert error(response) == (403, "ACCESS_DENIED"), method
        assert response.json()["error_description"].startswith("Access denied!")
    assert httpx.post(webhook + "events").json()["result"] == [REG, BIND]


def test_events_lists_the_callers_scopes(server):
    assert result(hook(server, "events")) == [REG, BIND]  # a webhook hears no OnAppUninstall
    assert result(hook(server, "events", FULL=True)) == [REG, BIND, UNINSTALL]
    assert result(hook(server, "events", SCOPE="telephony", FULL=True)) == [REG, BIND]
    assert result(hook(server, "events", scope="")) == []
    assert result(hook(server, "events", scope="crm")) == []
    app = App(server, "--scope", "user")
    token = app.tokens()["access_token"]
    assert result(as_app(server, token, "events")) == [UNINSTALL]
    assert result(as_app(server, token, "events", SCOPE="")) == [UNINSTALL]
    assert result(as_app(server, token, "events", SCOPE="TELEPHONY")) == [REG, BIND]
    assert error(as_app(server, token, "event.bind", event=REG, handler=HOOK)) == (400, "ERROR_EVENT_NOT_FOUND")
    bound(as_app(server, token, "event.bind", event="onappuninstall", handler=HOOK))
    assert result(as_app(server, token, "event.get"))[0]["event"] == "ONAPPUNINSTALL"
    uninstall = hook(server, "event.bind", event=UNINSTALL, handler=HOOK)
    assert error(uninstall) == (400, "ERROR_EVENT_NOT_FOUND")
    assert uninstall.json()["error_description"] == "Event not found"
    assert error(hook(server, "event.bind", event="OnCrmDealAdd", handler=HOOK)) == (400, "ERROR_EVENT_NOT_FOUND")


def test_apps_see_their_own_handlers_and_non_admins_their_own_auth_type(server):
    first, second = App(server), App(server)
    clerk = cli(server.data_dir, "user", "create", "--name", "Clerk", "--numbers-modify")
    plain = cli(server.data_dir, "user", "create", "--name", "Plain")
    admin, other = first.tokens()["access_token"], second.tokens()["access_token"]
    clerks, plains = first.tokens(user=int(clerk))["access_token"], first.tokens(user=int(plain))["access_token"]

    bound(as_app(server, admin, "event.bind", event=REG, handler=HOOK + "/first", auth_type=7))
    bound(as_app(server, other, "event.bind", event=REG, handler=HOOK + "/second"))
    bound(as_app(server, clerks, "event.bind", event=REG, handler=HOOK + "/clerk"))
    bound(as_app(server, clerks, "event.bind", event=BIND, handler=HOOK + "/clerk", auth_type=clerk))
    denied = as_app(server, clerks, "event.bind", event=REG, handler=HOOK + "/clerk", auth_type=1)
    assert error(denied) == (403, "ACCESS_DENIED")
    assert denied.json()["error_description"] == (
        "Access denied! Event binding with AUTH_TYPE requires administrator access rights")
    offline = as_app(server, clerks, "event.bind", event=REG, event_type="offline")
    assert offline.json()["error_description"] == (
        "Access denied! Offline events binding requires administrator access rights")
    # telephony events need "Manage numbers — modify", as voximplant.sip.* do; OnAppUninstall does not
    assert error(as_app(server, plains, "event.bind", event=REG, handler=HOOK + "/p")) == (403, "ACCESS_DENIED")
    bound(as_app(server, plains, "event.bind", event=UNINSTALL, handler=HOOK + "/p"))

    def seen(token):
        return [(row["handler"][len(HOOK):], row["auth_type"]) for row in result(as_app(server, token, "event.get"))]

    assert seen(admin) == [("/first", "7"), ("/clerk", clerk), ("/clerk", clerk), ("/p", plain)]
    assert seen(clerks) == [("/clerk", clerk), ("/clerk", clerk)]
    assert seen(other) == [("/second", "0")]
    assert result(hook(server, "event.get")) == []  # webhooks own none of the apps' handlers

    assert error(as_app(server, clerks, "event.unbind", event=REG, handler=HOOK + "/first", auth_type=7)) == (
        403, "ACCESS_DENIED")
    assert result(as_app(server, clerks, "event.unbind", event=REG, handler=HOOK + "/first")) == {"count": 0}
    assert result(as_app(server, other, "event.unbind", event=REG, handler=HOOK + "/first")) == {"count": 0}
    assert result(as_app(server, clerks, "event.unbind", event=REG, handler=HOOK + "/clerk")) == {"count": 1}
    assert result(as_app(server, admin, "event.unbind", event=REG, handler=HOOK + "/first")) == {"count": 1}
    assert seen(admin) == [("/clerk", clerk), ("/p", plain)]


@pytest.mark.parametrize(("body", "status", "code", "description"), [
    ({}, 400, "ERROR_ARGUMENT", "Argument 'EVENT' is null or empty"),
    ({"event": ""}, 400, "ERROR_ARGUMENT", "Argument 'EVENT' is null or empty"),
    ({"event": REG}, 400, "ERROR_ARGUMENT", "Argument 'HANDLER' is null or empty"),
    ({"event": REG, "event_type": "push", "handler": HOOK}, 400, "ERROR_ARGUMENT",
     "EVENT_TYPE: Value must be one of {online|offline}"),
    ({"event": [REG], "handler": HOOK}, 400, "ERROR_ARGUMENT", "EVENT must be a scalar value"),
    ({"event": REG, "handler": {"url": HOOK}}, 400, "ERROR_ARGUMENT", "HANDLER must be a scalar value"),
    ({"event": REG, "handler": HOOK, "auth_type": 2**40}, 400, "ERROR_ARGUMENT", "AUTH_TYPE: must be a user ID"),
    ({"event": REG, "handler": "ftp://127.0.0.1/x"}, 400, "ERROR_UNSUPPORTED_PROTOCOL",
     "Unsupported handler protocol"),
    ({"event": REG, "handler": "http://user:pw@127.0.0.1/x"}, 400, "ERROR_WRONG_HANDLER_URL",
     "Wrong handler URL: HANDLER carries user info"),
    ({"event": REG, "handler": "http:///x"}, 400, "ERROR_WRONG_HANDLER_URL", "Wrong handler URL: HANDLER has no valid host"),
    ({"event": REG, "handler": "http://a b/x"}, 400, "ERROR_WRONG_HANDLER_URL",
     "Wrong handler URL: HANDLER holds a space, a control or a non-ASCII character"),
    ({"event": REG, "handler": "http://127.0.0.1/\r\nX: y"}, 400, "ERROR_WRONG_HANDLER_URL",
     "Wrong handler URL: HANDLER holds a space, a control or a non-ASCII character"),
    ({"event": REG, "handler": "http://127.0.0.1:99999/"}, 400, "ERROR_WRONG_HANDLER_URL", None),
    ({"event": REG, "handler": "http://h.example/" + "a" * 2048}, 400, "ERROR_WRONG_HANDLER_URL",
     "Wrong handler URL: HANDLER is longer than 2048 characters"),
    ({"event": REG, "handler": "http://sipline-test.invalid/x"}, 400, "ERROR_WRONG_HANDLER_URL",
     "Wrong handler URL: HANDLER's host sipline-test.invalid does not resolve"),
])
def test_bind_errors(server, body, status, code, description):
    response = hook(server, "event.bind", **body)
    assert error(response) == (status, code)
    if description is not None:
        assert response.json()["error_description"] == description


def test_handler_targets_obey_the_private_target_rule(strict, server):
    for url, address in [("http://127.0.0.1:9/x", "127.0.0.1"), ("http://localhost:9/x", None),
                         ("https://[::1]/x", "::1"), ("http://10.1.2.3/x", "10.1.2.3"),
                         ("http://[::ffff:192.168.1.1]/x", "::ffff:192.168.1.1")]:
        response = hook(strict, "event.bind", event=REG, handler=url)
        assert error(response) == (400, "ERROR_WRONG_HANDLER_URL"), url
        assert "not globally reachable" in response.json()["error_description"]
        if address:
            assert f"leads to {address}," in response.json()["error_description"]
    bound(hook(strict, "event.bind", event=REG, handler="http://1.1.1.1/x"))  # never posted to: no line here
    assert result(hook(strict, "event.unbind", event=REG, handler="http://1.1.1.1/x")) == {"count": 1}
    bound(hook(server, "event.bind", event=REG, handler="http://localhost:9/x"))
    assert result(hook(server, "event.unbind", event=REG, handler="http://localhost:9/x")) == {"count": 1}


def test_unbind_errors(server):
    assert error(hook(server, "event.unbind")) == (400, "ERROR_ARGUMENT")
    missing = hook(server, "event.unbind", event=REG)
    assert missing.json()["error_description"] == "Argument 'HANDLER' is null or empty"
    assert error(hook(server, "event.unbind", event=REG, event_type="x", handler=HOOK)) == (400, "ERROR_ARGUMENT")
    assert result(hook(server, "event.unbind", event="unknown", handler=HOOK)) == {"count": 0}


def test_the_same_errors_inside_a_batch(server):
    body = result(hook(server, "batch", cmd={
        "ok": f"event.bind?event={REG}&handler={HOOK}/batch",
        "again": f"event.bind?event={REG}&handler={HOOK}/batch",
        "gone": f"event.unbind?event={REG}&handler={HOOK}/batch"}))
    assert body["result"]["ok"] is True and body["result"]["gone"] == {"count": 1}
    assert body["result_error"]["again"]["error"] == "ERROR_CORE"
