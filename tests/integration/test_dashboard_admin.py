"""The dashboard's pages beside the lines (docs/behaviour.md#dashboard-pages): providers, events, webhooks,
applications and the operator's portals, read over HTTP from a real `sipline serve` by users signed in
with `sipline dashboard-link`, each with the rights REST gives them (docs/behaviour.md#dashboard-rights)."""

from __future__ import annotations

import json
import re
from urllib.parse import urlsplit

import httpx
import pytest

from tests.event_handlers import Receiver
from tests.integration.operator import cli, error, fields, hook_call, result
from tests.integration.server import SiplineProcess
from tests.waiting import wait_until

ADMIN_PAGES = ("/ui/events", "/ui/webhooks", "/ui/apps")
CSRF = re.compile(r'name="csrf" value="([^"]+)"')
NEW_WEBHOOK = re.compile(r'<code id="new-webhook">([^<]+)</code>')
LINE = {"TITLE": "Front desk", "SERVER": "sip.example.invalid", "LOGIN": "frontdesk77", "PASSWORD": "secret"}


class Visitor:
    """A signed-in dashboard user: requests to the server as the link's host, with the session cookie."""

    def __init__(self, server: SiplineProcess, link: str) -> None:
        host = urlsplit(link).netloc
        path = link.split(host, 1)[1]
        signed_in = httpx.get(f"{server.base_url}{path}", headers={"Host": host}, follow_redirects=False, timeout=10)
        assert signed_in.status_code == 303, signed_in.text
        session = signed_in.cookies["sipline_session"]
        self.client = httpx.Client(base_url=server.base_url, timeout=10, follow_redirects=False,
                                   headers={"Host": host, "Cookie": f"sipline_session={session}"})

    def get(self, path: str) -> httpx.Response:
        return self.client.get(path)

    def post(self, path: str, data: dict[str, str], *, csrf: bool = True) -> httpx.Response:
        """A form as a page of this session sends it (every page carries the token, in its sign-out form)."""
        if csrf:
            data = {"csrf": CSRF.search(self.get("/ui/providers").text)[1], **data}
        return self.client.post(path, data=data)

    def close(self) -> None:
        self.client.close()


def link(server: SiplineProcess, *args: str) -> str:
    return cli(server.data_dir, "dashboard-link", *args)


def page_of(response: httpx.Response, status: int = 200) -> str:
    assert response.status_code == status, response.text[:2000]
    assert response.headers["content-type"].startswith("text/html")
    return response.text


def cells(page: str, domain: str) -> list[str]:
    """The cells of the portals page's row of `domain`."""
    row = re.search(rf'<tr id="portal-\d+" data-domain="{re.escape(domain)}">(.*?)</tr>', page, re.S)
    assert row, page
    return [cell.strip() for cell in re.findall(r"<td>(.*?)</td>", row[1], re.S)]


def webhook_states(server: SiplineProcess, *portal: str) -> dict[int, str]:
    """`sipline webhook list --json`: each webhook's state by ID."""
    return {row["ID"]: row["STATE"] for row in json.loads(cli(server.data_dir, "webhook", "list", "--json", *portal))}


@pytest.fixture
def server(tmp_path):
    # handlers on loopback are allowed; a failed delivery waits a minute unless someone says "retry now"
    process = SiplineProcess(tmp_path / "data", "--allow-private-targets", "--event-retry-after", "60").start()
    yield process
    process.stop()


@pytest.fixture
def admin(server):
    visitor = Visitor(server, server.printed["dashboard"])
    yield visitor
    visitor.close()


def test_an_admin_sees_providers_events_webhooks_applications_and_the_portals(server, admin):
    result(hook_call(server.webhook, server, "voximplant.sip.add", json=LINE))
    app = fields(cli(server.data_dir, "app", "create", "--name", "CRM <sync>", "--scope", "telephony,crm"))

    providers = page_of(admin.get("/ui/providers"))
    assert "sip.example.invalid" in providers and '<th scope="col">Breaker</th>' in providers
    assert 'data-breaker="closed"' in providers  # no `sip` process has seen it down
    events = page_of(admin.get("/ui/events"))
    assert "No handler is bound" in events
    webhooks = page_of(admin.get("/ui/webhooks"))
    assert 'id="webhook-1" data-state="active"' in webhooks
    assert server.webhook.split("/")[-2] not in webhooks  # a webhook's code is never shown again
    assert '<label for="webhook-user">' in webhooks and '<label for="webhook-scopes">' in webhooks
    apps = page_of(admin.get("/ui/apps"))
    assert app["client_id"] in apps and "CRM &lt;sync&gt;" in apps and "crm,telephony" in apps  # escaped, as listed
    assert app["client_secret"] not in apps
    portals = page_of(admin.get("/ui/portals"))
    # domain, title, member ID, cloud lines, max cloud lines, lines, max lines, rate limit, digest algorithms
    shown = cells(portals, "127.0.0.1")
    assert shown[0] == "127.0.0.1 (this one)" and shown[3] == "1" and shown[5] == "1"  # the one cloud line
    assert shown[7:] == ["service default", "service default"]  # no rate limit or digest of its own
    for page in (providers, events, webhooks, apps, portals):
        assert "<script>" not in page and " style=" not in page  # the CSP allows neither


def test_a_failing_handler_shows_on_the_events_page_and_retry_now_sends_its_deliveries_again(server, admin):
    with Receiver((500,)) as receiver:
        bound = hook_call(server.webhook, server, "event.bind",
                          json={"event": "OnSiplineRegistrationChange", "handler": receiver.url()})
        assert result(bound) is True
        result(hook_call(server.webhook, server, "voximplant.sip.add", json=LINE))
        failing = wait_until(lambda: 'status bad">Failing' in (page := admin.get("/ui/events").text) and page, 20)
        assert receiver.url() in failing and "500" in failing and "ONSIPLINEREGISTRATIONCHANGE" in failing
        [row] = json.loads(cli(server.data_dir, "event", "list", "--json"))  # the page shows what the CLI does
        assert row["FAILING_SINCE"] and row["LAST_ERROR"] in failing and f'id="handler-{row["ID"]}"' in failing
        tried = len(receiver.received)

        refused = admin.post("/ui/events/retry", {"handler": str(row["ID"])}, csrf=False)
        assert "CSRF" in page_of(refused, 403)
        retried = page_of(admin.post("/ui/events/retry", {"handler": str(row["ID"])}))
        assert re.search(rf"Handler {row['ID']}: [1-9]\d* deliveries due now", retried)
        wait_until(lambda: len(receiver.received) > tried, 10)  # not the minute --event-retry-after waits
        assert "is not a handler ID" in page_of(admin.post("/ui/events/retry", {"handler": "x"}), 400)


def test_webhooks_are_made_and_revoked_through_the_page_as_the_cli_and_rest_see_them(server, admin):
    created = page_of(admin.post("/ui/webhooks", {"user": "1", "scopes": "telephony, user"}))
    url = NEW_WEBHOOK.search(created)[1]
    assert url.startswith(f"{server.base_url}/rest/1/") and 'data-copy="new-webhook"' in created
    assert result(hook_call(url, server, "scope")) == ["telephony", "user"]  # it works
    hook_id = int(re.search(r"Webhook (\d+) created", created)[1])
    assert webhook_states(server) == {1: "active", hook_id: "active"}
    assert url.split("/")[-2] not in page_of(admin.get("/ui/webhooks"))  # shown once

    refused = page_of(admin.post("/ui/webhooks", {"user": "1", "scopes": "telephony"}, csrf=False), 403)
    assert "CSRF" in refused and NEW_WEBHOOK.search(refused) is None
    assert page_of(admin.post("/ui/webhooks/revoke", {"id": str(hook_id)}, csrf=False), 403)
    assert webhook_states(server) == {1: "active", hook_id: "active"}  # nothing changed

    for form, why in (({"user": "7", "scopes": "telephony"}, "has no user 7"),
                      ({"user": "1", "scopes": "telephony,nonsense"}, "unknown &#39;nonsense&#39;"),
                      ({"user": "one", "scopes": "telephony"}, "is not a user ID")):
        answer = page_of(admin.post("/ui/webhooks", form), 400)
        assert '<p class="error" role="alert">' in answer and why in answer and NEW_WEBHOOK.search(answer) is None
    assert "no webhook 99 on this portal" in page_of(admin.post("/ui/webhooks/revoke", {"id": "99"}), 400)

    revoke_form = re.search(r'<form method="post" action="/ui/webhooks/revoke" data-confirm="([^"]+)">\s*'
                            r'<input type="hidden" name="csrf" value="[^"]+">\s*'
                            rf'<input type="hidden" name="id" value="{hook_id}">', page_of(admin.get("/ui/webhooks")))
    assert revoke_form and f"Revoke webhook {hook_id}?" in revoke_form[1]
    revoked = page_of(admin.post("/ui/webhooks/revoke", {"id": str(hook_id)}))
    assert f'id="webhook-{hook_id}" data-state="revoked"' in revoked
    assert error(hook_call(url, server, "scope")) == (403, "INVALID_CREDENTIALS")
    assert webhook_states(server) == {1: "active", hook_id: "revoked"}
    assert result(hook_call(server.webhook, server, "scope")) == ["telephony"]  # the other one still works


def test_a_numbers_user_sees_providers_only_and_a_user_without_rights_sees_nothing(server, admin):
    result(hook_call(server.webhook, server, "voximplant.sip.add", json=LINE))
    numbers = cli(server.data_dir, "user", "create", "--name", "Numbers", "--numbers-modify")
    nobody = cli(server.data_dir, "user", "create", "--name", "Nobody")
    with_numbers = Visitor(server, link(server, "--user", numbers))
    without = Visitor(server, link(server, "--user", nobody))
    try:
        assert "sip.example.invalid" in page_of(with_numbers.get("/ui/providers"))
        for path in (*ADMIN_PAGES, "/ui/portals"):
            assert "No access" in page_of(with_numbers.get(path), 403)
        shown = page_of(with_numbers.get("/ui/providers"))
        assert 'href="/ui/webhooks"' not in shown and 'href="/ui/portals"' not in shown  # nor in the menu
        for path in ("/ui/providers", *ADMIN_PAGES, "/ui/portals"):
            refused = page_of(without.get(path), 403)
            assert "sip.example.invalid" not in refused and "webhook-1" not in refused and "<table" not in refused
        made = with_numbers.client.post("/ui/webhooks", data={"csrf": CSRF.search(shown)[1], "user": numbers,
                                                               "scopes": "telephony"})
        assert page_of(made, 403) and len(webhook_states(server)) == 1
        for path in ("/ui/providers", *ADMIN_PAGES, "/ui/portals"):
            assert page_of(httpx.get(server.base_url + path, timeout=10), 401)  # no session: no data either
    finally:
        with_numbers.close()
        without.close()


def test_a_second_portals_admin_sees_only_its_own_and_the_operator_sees_every_portal(server, admin):
    made = fields(cli(server.data_dir, "portal", "create", "--domain", "b.example", "--max-lines", "20"))
    cli(server.data_dir, "portal", "limit", "--portal", "b.example", "--rate-limit", "10/1")
    cli(server.data_dir, "portal", "digest", "--portal", "b.example", "--digest-algorithms", "SHA-256,MD5")
    app_a = fields(cli(server.data_dir, "app", "create", "--name", "A app"))
    app_b = fields(cli(server.data_dir, "app", "create", "--portal", "b.example", "--name", "B app"))
    extra_a = cli(server.data_dir, "webhook", "create", "--user", "1")
    b_admin = Visitor(server, link(server, "--portal", "b.example"))
    try:
        b_hooks = page_of(b_admin.get("/ui/webhooks"))
        a_ids = set(webhook_states(server))
        [b_id] = webhook_states(server, "--portal", "b.example")
        assert f'id="webhook-{b_id}"' in b_hooks and "b.example" in b_hooks
        assert not [i for i in a_ids - {b_id} if f'id="webhook-{i}"' in b_hooks]
        b_apps = page_of(b_admin.get("/ui/apps"))
        assert app_b["client_id"] in b_apps and app_a["client_id"] not in b_apps
        assert "No access" in page_of(b_admin.get("/ui/portals"), 403)
        # portal a's handlers are not portal b's to see or retry
        result(hook_call(server.webhook, server, "event.bind",
                         json={"event": "OnSiplineRegistrationChange", "event_type": "offline"}))
        [a_handler] = json.loads(cli(server.data_dir, "event", "list", "--json"))
        assert "No handler is bound" in page_of(b_admin.get("/ui/events"))
        assert f'id="handler-{a_handler["ID"]}"' in page_of(admin.get("/ui/events"))
        retried = page_of(b_admin.post("/ui/events/retry", {"handler": str(a_handler["ID"])}))
        assert f"Handler {a_handler['ID']}: 0 deliveries due now" in retried

        # a webhook of portal a is not portal b's to revoke
        [a_extra_id] = a_ids - {1}
        assert "on this portal" in page_of(b_admin.post("/ui/webhooks/revoke", {"id": str(a_extra_id)}), 400)
        assert webhook_states(server)[a_extra_id] == "active" and result(hook_call(extra_a, server, "scope"))
        # a webhook made on portal b's page is portal b's, at b's address
        url = NEW_WEBHOOK.search(page_of(b_admin.post("/ui/webhooks", {"user": "1", "scopes": "telephony"})))[1]
        assert url.startswith(f"http://b.example:{server.port}/rest/1/")
        assert result(hook_call(url, server, "scope", host="b.example")) == ["telephony"]
        assert error(hook_call(url, server, "scope")) == (403, "INVALID_CREDENTIALS")
        assert len(webhook_states(server, "--portal", "b.example")) == 2 and len(webhook_states(server)) == 2

        assert app_b["client_id"] not in page_of(admin.get("/ui/apps"))
        portals = page_of(admin.get("/ui/portals"))
        shown = cells(portals, "b.example")
        assert shown[0] == "b.example" and made["member_id"] in shown[2]
        assert shown[3:] == ["0", shown[4], "0", "20", "10/1", "SHA-256,MD5"]
        assert cells(portals, "127.0.0.1")[0] == "127.0.0.1 (this one)"
    finally:
        b_admin.close()
