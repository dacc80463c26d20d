"""Events delivered to a real HTTP handler on loopback (docs/behaviour.md#event-delivery), from changes
made by real SIP: SIPp registers office lines as a PBX would. Handlers are bound in the store
(tests/event_handlers.py) as event.bind will bind them."""

from __future__ import annotations

import json
import re
import socket
import time
from pathlib import Path

from tests.event_handlers import Receiver, bind_in
from tests.integration.operator import cli, fields
from tests.interop.test_office_registrar import Office, register
from tests.metrics import value
from tests.waiting import wait_until

BIND = "ONSIPLINEBINDINGCHANGE"
README = Path(__file__).resolve().parents[2] / "README.md"
SHORT_RETRIES = ("--event-retry-after", "0.5", "--event-retry-max-interval", "2")


def readme_verifier():
    """The five-line verifier README documents, run as it is printed there."""
    [code] = re.findall(r"```python\n(import hashlib, hmac\n.*?)```", README.read_text(), re.S)
    namespace: dict = {}
    exec(code, namespace)
    return namespace["verified"]


def test_a_pbx_registering_reaches_the_handler_within_a_second_signed_as_readme_says(start_sipline, tmp_path):
    sipline = start_sipline()
    with Receiver() as receiver:
        bind_in(sipline.data_dir, BIND, receiver.url())
        office = Office(sipline)
        before = time.time()
        assert register(sipline, tmp_path, [office.user]) == ["result 200 expires=600"]
        wait_until(lambda: receiver.received, 5)
        arrived, _path, headers, body = receiver.received[0]
        assert arrived - before < 3  # SIPp's start and its REGISTER exchange come first; the metric times the rest
        within_a_second = value(sipline.base_url, "sipline_event_delivery_seconds_bucket", event=BIND, le="1.0")
        assert within_a_second == 1 == value(sipline.base_url, "sipline_events_delivered_total", event=BIND)
        form = receiver.forms()[0]
        assert form["event"] == BIND and form["data[CHANGE]"] == "added" and form["data[BINDINGS]"] == "1"
        assert form["data[CONFIG_ID]"] == str(office.config_id) and form["data[SOURCE_ADDRESS]"].startswith("127.0.0.1:")
        assert form["auth[member_id]"] and form["auth[domain]"] and form["auth[application_token]"] == ""
        assert headers["Content-Type"] == "application/x-www-form-urlencoded"
        secret = cli(sipline.data_dir, "event", "signing-secret")
        verified = readme_verifier()
        assert verified(secret, headers["X-Sipline-Signature"], body)
        assert not verified(secret, headers["X-Sipline-Signature"], body + b"&x=1")
        listed = json.loads(cli(sipline.data_dir, "event", "list", "--json"))
        assert listed[0]["HANDLER"] == receiver.url() and listed[0]["OWNER"] == "webhook"
        wait_until(lambda: json.loads(cli(sipline.data_dir, "event", "list", "--json"))[0]["LAST_DELIVERED"], 5)


def test_a_handler_answering_500_then_200_gets_the_same_body_twice(start_sipline, tmp_path):
    sipline = start_sipline(*SHORT_RETRIES)
    with Receiver((500, 200)) as receiver:
        bind_in(sipline.data_dir, BIND, receiver.url())
        office = Office(sipline)
        register(sipline, tmp_path, [office.user])
        wait_until(lambda: len(receiver.received) >= 2, 10)
        first, second = receiver.received[:2]
        assert first[3] == second[3] and 0.3 < second[0] - first[0] < 3
        time.sleep(1)
        assert len(receiver.received) == 2


def test_a_private_handler_is_refused_at_connection_without_allow_private_targets(start_sipline, tmp_path):
    sipline = start_sipline(private=False)
    with Receiver() as receiver:
        bind_in(sipline.data_dir, BIND, receiver.url())
        office = Office(sipline)
        register(sipline, tmp_path, [office.user])  # office lines need no outgoing target: the PBX comes to us

        def failing():
            [row] = json.loads(cli(sipline.data_dir, "event", "list", "--json"))
            return row["FAILING_SINCE"] and row

        row = wait_until(failing, 10)
        assert "127.0.0.1" in row["LAST_ERROR"] and "not globally reachable" in row["LAST_ERROR"] and row["QUEUED"] == 1
        assert receiver.received == []


def test_a_kill_between_the_change_and_the_delivery_loses_nothing(start_sipline, tmp_path):
    sipline = start_sipline(*SHORT_RETRIES)
    receiver = Receiver()
    url = receiver.url()  # nobody listens there yet: the delivery fails and stays queued
    receiver.server.server_close()
    bind_in(sipline.data_dir, BIND, url)
    office = Office(sipline)
    register(sipline, tmp_path, [office.user])
    wait_until(lambda: json.loads(cli(sipline.data_dir, "event", "list", "--json"))[0]["FAILING_SINCE"], 10)
    sipline.kill()
    port = int(url.rsplit(":", 1)[1].split("/")[0])
    with Receiver.on_port(port) as back:
        sipline.start()
        cli(sipline.data_dir, "event", "retry", "--all")
        wait_until(lambda: back.received, 10)
        assert back.forms()[0]["data[CHANGE]"] == "added"


def test_uninstall_sends_onappuninstall_and_removes_the_apps_handlers(start_sipline):
    sipline = start_sipline()
    with Receiver() as receiver:
        app = fields(cli(sipline.data_dir, "app", "create", "--name", "a"))
        client_id = app["client_id"]
        bind_in(sipline.data_dir, "ONAPPUNINSTALL", receiver.url("/gone"), owner=client_id, app_client_id=client_id)
        bind_in(sipline.data_dir, BIND, receiver.url("/lines"), owner=client_id, app_client_id=client_id)
        cli(sipline.data_dir, "app", "uninstall", "--client-id", client_id)
        wait_until(lambda: receiver.received, 5)
        [form] = receiver.forms()
        assert form["event"] == "ONAPPUNINSTALL" and form["data[LANGUAGE_ID]"] == "en" and form["data[CLEAN]"] == "0"
        assert form["auth[application_token]"] == client_id and "auth[access_token]" not in form
        assert receiver.received[0][2]["X-Sipline-Signature"]
        assert readme_verifier()(app["client_secret"], receiver.received[0][2]["X-Sipline-Signature"],
                                 receiver.received[0][3])  # an app's deliveries: its client secret signs
        assert json.loads(cli(sipline.data_dir, "event", "list", "--json")) == []


def test_a_handler_down_for_a_minute_gets_everything_afterwards_in_order_per_line(start_sipline, tmp_path):
    sipline = start_sipline(*SHORT_RETRIES)
    receiver = Receiver()
    port, url = receiver.port, receiver.url()
    receiver.server.server_close()  # down: connections refused
    bind_in(sipline.data_dir, BIND, url)
    offices = [Office(sipline, f"office {n}") for n in range(3)]
    users = [office.user for office in offices]
    down_at = time.time()
    register(sipline, tmp_path, users)  # added, each
    register(sipline, tmp_path, users)  # from another port: each added (the new Contact)
    assert sipp_unregister(sipline, tmp_path, users)  # Contact: *: each removed, twice
    time.sleep(max(0.0, 60 - (time.time() - down_at)))
    with Receiver.on_port(port) as back:
        wait_until(lambda: len(back.received) >= 12, 15)
        time.sleep(1)
        forms = back.forms()
    assert len(forms) == 12
    for office in offices:
        changes = [form["data[CHANGE]"] for form in forms if form["data[CONFIG_ID]"] == str(office.config_id)]
        bindings = [form["data[BINDINGS]"] for form in forms if form["data[CONFIG_ID]"] == str(office.config_id)]
        assert changes == ["added", "added", "removed", "removed"] and bindings == ["1", "2", "0", "0"]  # after the REGISTER: Contact: * took both


def sipp_unregister(sipline, tmp_path, users) -> bool:
    from tests.peers import sipp

    return sipp.register_office(tmp_path / "wild", sipline.sip_port, None, users, wildcard=True, expires=0) == [
        "result 200 none"] * len(users)


def test_a_handler_that_never_answers_does_not_delay_another(start_sipline, tmp_path):
    sipline = start_sipline()  # --event-timeout 5: each attempt at the silent handler holds its slot 5 s
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(64)  # connections complete in the kernel's backlog; nothing ever answers
    try:
        with Receiver() as receiver:
            bind_in(sipline.data_dir, BIND, f"http://127.0.0.1:{silent.getsockname()[1]}/hook")
            bind_in(sipline.data_dir, BIND, receiver.url())
            offices = [Office(sipline, f"office {n}") for n in range(6)]
            registered = time.time()
            register(sipline, tmp_path, [office.user for office in offices])
            wait_until(lambda: len(receiver.received) >= 6, 5)
            assert receiver.received[-1][0] - registered < 4  # not behind the silent handler's 5 s attempts
            assert sorted(form["data[CONFIG_ID]"] for form in receiver.forms()) == sorted(
                str(office.config_id) for office in offices
            )

            def silent_failing():
                rows = json.loads(cli(sipline.data_dir, "event", "list", "--json"))
                row = next(row for row in rows if row["HANDLER"].endswith(f":{silent.getsockname()[1]}/hook"))
                return row["FAILING_SINCE"] and row

            row = wait_until(silent_failing, 10)
            assert "no answer within 5 s" in row["LAST_ERROR"] and row["QUEUED"] == 6
    finally:
        silent.close()
