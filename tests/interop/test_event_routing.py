"""Events end to end, bound through the REST methods themselves (docs/behaviour.md#event-bind): each owner
hears only the lines it may see (docs/behaviour.md#event-names), online deliveries carry the documented
form and signature (docs/behaviour.md#event-payload, docs/behaviour.md#event-signature), and an offline
binding's queue is read, marked, sent back and cleared with event.offline.* (docs/behaviour.md#event-offline).
The changes are real: SIPp registers the office lines' PBXes."""

from __future__ import annotations

import json
from contextlib import ExitStack

import httpx

from tests.event_handlers import Receiver
from tests.integration.operator import App, call, cli, fields, hook_call, result
from tests.integration.server import SiplineProcess
from tests.interop.test_event_delivery import readme_verifier, sipp_unregister
from tests.interop.test_office_registrar import register
from tests.waiting import wait_until

BIND = "ONSIPLINEBINDINGCHANGE"
OFFICE = {"TYPE": "office", "SERVER": "pbx.example.invalid", "LOGIN": "trunk", "PASSWORD": "trunk-secret"}


class Owner:
    """One owner of handlers and lines on the default portal: an OAuth app (its admin's token) or, with
    `app` None, the portal's admin webhook."""

    def __init__(self, sipline: SiplineProcess, app: App | None = None) -> None:
        self.sipline, self.app = sipline, app
        self.token = app.tokens()["access_token"] if app else None

    def call(self, method: str, **body) -> httpx.Response:
        if self.token is None:
            return httpx.post(self.sipline.webhook + method, json=body)
        return call(self.sipline, method, json={"auth": self.token, **body})

    def result(self, method: str, **body):
        return result(self.call(method, **body))

    def office(self, title: str) -> tuple[int, tuple[str, str]]:
        """A new office line: (CONFIG_ID, what its PBX registers with)."""
        row = self.result("voximplant.sip.add", TITLE=title, **OFFICE)
        return int(row["CONFIG_ID"]), (row["INCOMING_LOGIN"], row["INCOMING_PASSWORD"])

    def config_ids(self) -> list[int]:
        """The lines it sees: its own (APP_ID its client_id, or "" for webhooks: docs/behaviour.md#line-ownership)."""
        return [int(line["CONFIG_ID"]) for line in self.result("voximplant.sip.get")]


def queued(sipline: SiplineProcess) -> int:
    return sum(row["QUEUED"] for row in json.loads(cli(sipline.data_dir, "event", "list", "--json")))


def test_each_owner_hears_only_its_own_lines_signed_with_its_own_key(start_sipline, tmp_path):
    sipline = start_sipline()
    portal_b = fields(cli(sipline.data_dir, "portal", "create", "--domain", "localhost", "--title", "B"))
    portals = {row["DOMAIN"]: row["MEMBER_ID"] for row in json.loads(cli(sipline.data_dir, "portal", "list", "--json"))}
    apps = [App(sipline), App(sipline)]
    owners = [Owner(sipline, apps[0]), Owner(sipline, apps[1]), Owner(sipline)]
    with ExitStack() as stack:
        receivers = [stack.enter_context(Receiver()) for _ in range(4)]
        for owner, receiver in zip(owners, receivers[:3], strict=True):
            assert owner.result("event.bind", event="OnSiplineBindingChange", handler=receiver.url()) is True
        for event in (BIND, "ONSIPLINEREGISTRATIONCHANGE"):  # the other portal's admins hear everything of theirs
            assert (
                result(
                    hook_call(
                        portal_b["webhook"],
                        sipline,
                        "event.bind",
                        host="localhost",
                        json={"event": event, "handler": receivers[3].url()},
                    )
                )
                is True
            )
        lines = [owner.office(f"line {n}") for n, owner in enumerate(owners)]
        assert [owner.config_ids() for owner in owners] == [[config_id] for config_id, _ in lines]

        assert register(sipline, tmp_path, [user for _, user in lines]) == ["result 200 expires=600"] * 3
        assert sipp_unregister(sipline, tmp_path, [user for _, user in lines])
        wait_until(
            lambda: all(len(receiver.received) >= 2 for receiver in receivers[:3]) and queued(sipline) == 0,
            10,
            message=lambda: f"received {[len(r.received) for r in receivers]}, queued {queued(sipline)}",
        )

        assert receivers[3].received == []
        webhook_secret = cli(sipline.data_dir, "event", "signing-secret")
        assert webhook_secret != cli(sipline.data_dir, "event", "signing-secret", "--portal", "localhost")
        secrets = [apps[0].client_secret, apps[1].client_secret, webhook_secret]
        tokens = [apps[0].client_id, apps[1].client_id, ""]
        verified = readme_verifier()
        handler_ids = set()
        for receiver, (config_id, _), secret, token in zip(receivers[:3], lines, secrets, tokens, strict=True):
            forms = receiver.forms()
            assert [(form["event"], form["data[CONFIG_ID]"], form["data[CHANGE]"]) for form in forms] == [
                (BIND, str(config_id), "added"),
                (BIND, str(config_id), "removed"),
            ]
            for form, (_, _, headers, body) in zip(forms, receiver.received, strict=True):
                assert list(form)[:2] == ["event", "event_handler_id"] and form["event_handler_id"].isdigit()
                assert form["auth[domain]"] == "127.0.0.1" and form["auth[member_id]"] == portals["127.0.0.1"]
                assert form["auth[application_token]"] == token
                assert ("auth[access_token]" in form) == bool(token) and ("auth[refresh_token]" in form) == bool(token)
                if token:
                    assert form["auth[access_token]"] and form["auth[user_id]"] == "1"
                assert verified(secret, headers["X-Sipline-Signature"], body)
                assert not any(
                    verified(other, headers["X-Sipline-Signature"], body) for other in secrets if other != secret
                )
            handler_ids |= {form["event_handler_id"] for form in forms}
        assert len(handler_ids) == 3  # one handler each, no two alike


def test_offline_events_of_real_changes_read_marked_sent_back_and_cleared_through_rest(start_sipline, tmp_path):
    sipline = start_sipline()
    app, webhook = Owner(sipline, App(sipline)), Owner(sipline)
    assert app.result("event.bind", event="onsiplinebindingchange", event_type="offline") is True
    assert app.result("event.get") == [{"event": BIND, "connector_id": "", "offline": 1}]
    mine = [app.office("a"), app.office("b")]
    theirs = webhook.office("webhook's")  # an app's queue holds its own lines' events only
    config_ids = {str(config_id) for config_id, _ in mine}

    assert register(sipline, tmp_path, [user for _, user in [*mine, theirs]]) == ["result 200 expires=600"] * 3
    listed = wait_until(lambda: len(app.result("event.offline.list")) >= 2 and app.result("event.offline.list"), 10)
    assert len(listed) == 2 and {row["EVENT_DATA"]["CONFIG_ID"] for row in listed} == config_ids
    assert [(row["PROCESS_ID"], row["ERROR"]) for row in listed] == [("", "0")] * 2
    assert app.result("event.offline.list") == listed  # reading changes nothing
    assert webhook.result("event.offline.list") == []

    first = app.result("event.offline.get", clear=0)
    process = first["process_id"]
    assert len(process) == 32 and [event["ID"] for event in first["events"]] == [row["ID"] for row in listed]
    for event in first["events"]:
        data = event["EVENT_DATA"]
        assert event["EVENT_NAME"] == BIND and data["CHANGE"] == "added" and data["BINDINGS"] == "1"
        user = next(user for config_id, user in mine if config_id == int(data["CONFIG_ID"]))
        assert data["CONTACT"].startswith(f"sip:{user[0]}@127.0.0.1:")
        assert data["SOURCE_ADDRESS"].startswith("127.0.0.1:")
    assert app.result("event.offline.get", clear=0)["events"] == []  # marked: another reader gets none
    assert [row["PROCESS_ID"] for row in app.result("event.offline.list")] == [process] * 2
    assert app.result("event.offline.get", process_id=process, clear=0) == first

    errored, kept = first["events"]
    assert app.result("event.offline.error", process_id=process, message_id=[errored["MESSAGE_ID"]]) is True
    assert [(row["MESSAGE_ID"], row["PROCESS_ID"], row["ERROR"]) for row in app.result("event.offline.list")] == [
        (errored["MESSAGE_ID"], "", "1"),
        (kept["MESSAGE_ID"], process, "0"),
    ]
    assert app.result("event.offline.get", clear=0)["events"] == []  # error=0: not the flagged one
    again = app.result("event.offline.get", error=1, clear=0)
    assert [event["MESSAGE_ID"] for event in again["events"]] == [errored["MESSAGE_ID"]]
    assert app.result("event.offline.clear", process_id=process) is True  # the rest of the first process
    assert [row["MESSAGE_ID"] for row in app.result("event.offline.list")] == [errored["MESSAGE_ID"]]
    assert app.result("event.offline.clear", process_id=again["process_id"]) is True
    assert app.result("event.offline.list") == []

    assert sipp_unregister(sipline, tmp_path, [user for _, user in [*mine, theirs]])
    wait_until(lambda: len(app.result("event.offline.list")) >= 2, 10)
    fresh = app.result("event.offline.get")  # clear=1: read and deleted
    assert fresh["process_id"] is None
    assert sorted(
        (event["EVENT_DATA"]["CONFIG_ID"], event["EVENT_DATA"]["CHANGE"], event["EVENT_DATA"]["BINDINGS"])
        for event in fresh["events"]
    ) == sorted((config_id, "removed", "0") for config_id in config_ids)
    assert app.result("event.offline.list") == []
