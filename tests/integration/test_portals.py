"""Many portals in one sipline, chosen by Host; users, rights and webhooks per portal (docs/behaviour.md#portals, docs/behaviour.md#user-rights, docs/behaviour.md#check-real-clients)."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from tests.integration.operator import App, call, cli, cli_refused, error, fields, hook_call, result
from tests.integration.server import SiplineProcess
from tests.stores import execute, store_env
import os

LINE = {"TYPE": "cloud", "TITLE": "A", "SERVER": "sip.example.invalid", "LOGIN": "100", "PASSWORD": "s"}


@pytest.fixture
def server(sipline):
    return sipline


@pytest.fixture
def portal_b(server):
    """A second portal, `localhost`, with its admin's webhook."""
    made = fields(cli(server.data_dir, "portal", "create", "--domain", "localhost", "--title", "B",
                      "--incoming-server", "pbx-b.example.invalid"))
    return made




def test_portal_create_and_list(server, portal_b):
    assert portal_b["portal"] == "localhost"
    assert re.fullmatch(r"[0-9a-f]{32}", portal_b["member_id"])
    assert portal_b["webhook"].startswith(f"http://localhost:{server.port}/rest/1/")
    listed = [line.split() for line in cli(server.data_dir, "portal", "list").splitlines()]
    assert listed[0] == ["DOMAIN", "MEMBER_ID", "TITLE"]
    assert listed[2] == ["localhost", portal_b["member_id"], "B"]
    assert listed[1][0] == "127.0.0.1" and listed[1][2] == "-"  # no title
    assert [line.split() for line in cli(server.data_dir, "portal", "list").splitlines()] == listed  # member_id is stable
    as_json = json.loads(cli(server.data_dir, "portal", "list", "--json"))
    assert as_json[1] == {"DOMAIN": "localhost", "MEMBER_ID": portal_b["member_id"], "TITLE": "B"}


def test_a_portal_is_chosen_by_host_and_its_credentials_work_only_there(server, portal_b):
    hook_b = portal_b["webhook"]
    line = result(hook_call(hook_b, server, "voximplant.sip.add", host="localhost", json={**LINE, "TYPE": "office"}))
    assert line["INCOMING_SERVER"] == "pbx-b.example.invalid"  # the portal's own realm
    assert error(hook_call(hook_b, server, "voximplant.sip.get", host="127.0.0.1")) == (403, "INVALID_CREDENTIALS")
    assert error(hook_call(server.webhook, server, "voximplant.sip.get", host="localhost")) == (
        403, "INVALID_CREDENTIALS")
    # a Host no portal has goes to the default portal
    assert result(hook_call(server.webhook, server, "voximplant.sip.get", host="other.example.invalid")) == []


def test_a_portal_sees_and_changes_only_its_own_lines_tokens_webhooks_and_bindings(server, portal_b):
    hook_a, hook_b = server.webhook, portal_b["webhook"]
    a_line = result(hook_call(hook_a, server, "voximplant.sip.add", json=LINE))
    a_office = result(hook_call(hook_a, server, "voximplant.sip.add", json={**LINE, "TYPE": "office", "TITLE": "O"}))
    b_line = result(hook_call(hook_b, server, "voximplant.sip.add", host="localhost", json={**LINE, "TITLE": "B"}))
    assert a_line["CONFIG_ID"] != b_line["CONFIG_ID"]

    def as_b(method: str, **body):
        return hook_call(hook_b, server, method, host="localhost", json=body)

    assert [row["CONFIG_ID"] for row in result(as_b("voximplant.sip.get"))] == [b_line["CONFIG_ID"]]
    assert error(as_b("voximplant.sip.update", CONFIG_ID=a_line["CONFIG_ID"], TITLE="x")) == (404, "ERROR_NOT_FOUND")
    assert error(as_b("voximplant.sip.delete", CONFIG_ID=a_line["CONFIG_ID"]))[1] == "ERROR_NOT_FOUND"
    assert error(as_b("voximplant.sip.status", REG_ID=a_line["REG_ID"]))[1] == "REG_ID_NOT_FOUND"
    assert error(as_b("sipline.sip.bindings", CONFIG_ID=a_office["CONFIG_ID"]))[1] == "ERROR_NOT_FOUND"
    assert error(as_b("voximplant.line.outgoing.sip.set", CONFIG_ID=a_office["CONFIG_ID"]))[1] == "ERROR_ARGUMENT"
    assert list(result(as_b("voximplant.line.get"))) == [f"reg{b_line['REG_ID']}"]
    assert result(hook_call(hook_a, server, "voximplant.sip.get"))[0]["TITLE"] == "A"  # A's line unchanged

    # tokens: an app of portal B cannot get a code at A, and B's token does nothing at A
    app_b = App(server, "--portal", "localhost", host="localhost")
    token_b = app_b.tokens()["access_token"]
    assert error(call(server, "voximplant.sip.get", params={"auth": token_b})) == (401, "invalid_token")
    assert result(call(server, "voximplant.sip.get", host="localhost", params={"auth": token_b})) == []
    at_a = cli_refused(server.data_dir, "app", "authorize", "--client-id", app_b.client_id, "--portal", "127.0.0.1")
    assert f"no app {app_b.client_id} is installed on portal 127.0.0.1" in at_a  # B's app gets no code at A

    # webhooks are listed and revoked per portal
    [hook_b] = json.loads(cli(server.data_dir, "webhook", "list", "--portal", "localhost", "--json"))
    assert (hook_b["USER"], hook_b["SCOPE"], hook_b["STATE"]) == (1, "telephony", "active")
    hook_a_id = str(json.loads(cli(server.data_dir, "webhook", "list", "--json"))[0]["ID"])
    revoke = cli_fails(server, "webhook", "revoke", "--portal", "localhost", "--id", hook_a_id)
    assert f"no webhook {hook_a_id} on this portal" in revoke
    assert result(hook_call(hook_a, server, "voximplant.sip.get"))  # still works


def cli_fails(server: SiplineProcess, *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "sipline", *args, "--data-dir", str(server.data_dir)],
                          capture_output=True, text=True, timeout=60, env={**os.environ, **store_env(server.data_dir)})
    assert done.returncode == 1 and done.stdout == "", done.stdout
    assert len(done.stderr.splitlines()) == 1 and "usage:" not in done.stderr, done.stderr
    return done.stderr


def test_users_and_rights(server, portal_b):
    user = cli(server.data_dir, "user", "create", "--portal", "localhost", "--name", "Clerk")
    assert user == "2"
    hook = cli(server.data_dir, "webhook", "create", "--portal", "localhost", "--user", user)
    assert hook.startswith(f"http://localhost:{server.port}/rest/2/")
    # no "Manage numbers — modify" right: refused before any parameter is looked at
    denied = hook_call(hook, server, "voximplant.sip.add", host="localhost", json={"TYPE": ["not", "scalar"]})
    assert denied.status_code == 403 and denied.json() == {"error": "ACCESS_DENIED", "error_description": "Access denied!"}
    assert result(hook_call(hook, server, "profile", host="localhost"))["ADMIN"] is False

    manager = cli(server.data_dir, "user", "create", "--portal", "localhost", "--name", "Mgr", "--numbers-modify")
    manager_hook = cli(server.data_dir, "webhook", "create", "--portal", "localhost", "--user", manager)
    assert result(hook_call(manager_hook, server, "voximplant.sip.get", host="localhost")) == []
    cli(server.data_dir, "user", "deactivate", "--portal", "localhost", "--user", manager)
    assert error(hook_call(manager_hook, server, "voximplant.sip.get", host="localhost")) == (403, "INVALID_CREDENTIALS")


def test_webhook_list_and_revoke(server):
    extra = cli(server.data_dir, "webhook", "create", "--scope", "telephony,user")
    listed = cli(server.data_dir, "webhook", "list").splitlines()
    assert listed[0].split() == ["ID", "USER", "SCOPE", "STATE", "CREATED"]
    assert len(listed) == 3 and listed[2].split()[1:4] == ["1", "telephony,user", "active"]
    assert extra.split("/")[-2] not in "\n".join(listed)  # the code is never shown again
    assert result(hook_call(extra, server, "scope")) == ["telephony", "user"]
    webhook_id = listed[2].split()[0]
    assert cli(server.data_dir, "webhook", "revoke", "--id", webhook_id) == f"webhook {webhook_id} revoked"
    assert error(hook_call(extra, server, "scope")) == (403, "INVALID_CREDENTIALS")
    assert json.loads(cli(server.data_dir, "webhook", "list", "--json"))[1]["STATE"] == "revoked"


def test_a_deleted_portal_answers_portal_deleted(server, portal_b):
    execute(server.data_dir, "UPDATE portal SET active = false WHERE domain = 'localhost'")
    response = hook_call(portal_b["webhook"], server, "voximplant.sip.get", host="localhost")
    assert error(response) == (403, "PORTAL_DELETED")
    assert result(hook_call(server.webhook, server, "voximplant.sip.get")) == []  # the other portal is fine
