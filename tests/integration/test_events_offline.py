"""The offline queue over raw HTTP (docs/behaviour.md#event-offline): records written into the running server's
store as the event side writes them, read with event.offline.get (marks, process ids, `clear`), sent back
with event.offline.error, removed with event.offline.clear, listed with event.offline.list."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.integration.operator import App, call, cli, error, result
from tests.integration.server import SiplineProcess
from tests.stores import execute

REG = "ONSIPLINEREGISTRATIONCHANGE"
START = 1_700_000_000  # TIMESTAMP_X of the first record a test writes
ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d\Z")


@pytest.fixture
def server(tmp_path):
    process = SiplineProcess(tmp_path / "data").start()
    yield process
    process.stop()


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    """One server for the tests that write nothing."""
    process = SiplineProcess(tmp_path_factory.mktemp("offline") / "data").start()
    yield process
    process.stop()


def write(server: SiplineProcess, numbers: range, owner: str = "", event: str = REG) -> None:
    """Records numbered `numbers`: MESSAGE_ID the number in hex, TIMESTAMP_X START + number."""
    portal = execute(server.data_dir, "SELECT id FROM portal ORDER BY id")[0][0]
    rows = ", ".join(
        f"({portal}, '{owner}', '{event}', '{{\"CONFIG_ID\": \"{n}\"}}', '{{\"user_id\": \"1\"}}', '{n:032x}', "
        f"{START + n}, '', false)" for n in numbers)
    execute(server.data_dir, "INSERT INTO event_offline (portal_id, owner, event, data, additional, message_id, "
                             f"created_at, process_id, error) VALUES {rows}")


def hook(server: SiplineProcess, method: str, **body) -> httpx.Response:
    return httpx.post(server.webhook + method, json=body)


def numbers(events: list[dict]) -> list[int]:
    return [int(event["MESSAGE_ID"], 16) for event in events]


def test_marking_reading_errors_and_clearing(server):
    write(server, range(5))
    first = result(hook(server, "event.offline.get", limit=2, clear=0))
    assert re.fullmatch(r"[0-9a-f]{32}", first["process_id"]) and numbers(first["events"]) == [0, 1]
    record = first["events"][0]
    assert list(record) == ["ID", "TIMESTAMP_X", "EVENT_NAME", "EVENT_DATA", "EVENT_ADDITIONAL", "MESSAGE_ID"]
    assert isinstance(record["ID"], str) and ISO.match(record["TIMESTAMP_X"]) and record["EVENT_NAME"] == REG
    assert record["EVENT_DATA"] == {"CONFIG_ID": "0"} and record["EVENT_ADDITIONAL"] == {"user_id": "1"}

    second = result(hook(server, "event.offline.get", limit=2, clear=0))  # a parallel reader: the next two
    assert second["process_id"] != first["process_id"] and numbers(second["events"]) == [2, 3]
    again = result(hook(server, "event.offline.get", process_id=first["process_id"], clear=0))
    assert again == first

    listed = hook(server, "event.offline.list").json()
    assert listed["total"] == 5 and "next" not in listed
    assert [(row["PROCESS_ID"], row["ERROR"]) for row in listed["result"]] == [
        (first["process_id"], "0")] * 2 + [(second["process_id"], "0")] * 2 + [("", "0")]

    assert result(hook(server, "event.offline.error", process_id=first["process_id"],
                       message_id=[f"{0:032x}"])) is True
    errored = result(hook(server, "event.offline.list", filter={"ERROR": 1}))
    assert numbers(errored) == [0] and errored[0]["PROCESS_ID"] == ""
    retried = result(hook(server, "event.offline.get", error=1))  # clear=1: read and gone, no process id
    assert retried["process_id"] is None and numbers(retried["events"]) == [0]

    assert result(hook(server, "event.offline.clear", process_id=second["process_id"],
                       message_id=[f"{3:032x}"])) is True
    assert result(hook(server, "event.offline.clear", process_id=first["process_id"])) is True
    rest = result(hook(server, "event.offline.get"))
    assert rest["process_id"] is None and numbers(rest["events"]) == [4]
    assert numbers(result(hook(server, "event.offline.list"))) == [2]
    kept = result(hook(server, "event.offline.get", process_id=second["process_id"]))  # clear=1 with an id
    assert kept["process_id"] == second["process_id"] and numbers(kept["events"]) == [2]
    assert result(hook(server, "event.offline.list")) == []
    assert result(hook(server, "event.offline.get")) == {"process_id": None, "events": []}


def test_filter_order_and_paging(server):
    write(server, range(60))
    write(server, range(60, 63), event="ONSIPLINEBINDINGCHANGE")
    page = hook(server, "event.offline.list", filter={"EVENT_NAME": REG.lower()}, order={"id": "desc"}).json()
    assert page["total"] == 60 and page["next"] == 50 and numbers(page["result"])[:2] == [59, 58]
    last = httpx.post(server.webhook + "event.offline.list", params={"start": 50},
                      json={"filter": {"EVENT_NAME": REG}, "order": {"ID": "DESC"}}).json()
    assert numbers(last["result"]) == list(range(9, -1, -1)) and "next" not in last

    ids = [int(row["ID"]) for row in result(hook(server, "event.offline.list"))]
    picked = result(hook(server, "event.offline.get", clear=0, limit=3, order={"TIMESTAMP_X": "DESC"},
                         filter={"!EVENT_NAME": "ONSIPLINEBINDINGCHANGE", ">=ID": ids[10], "<ID": ids[20]}))
    assert numbers(picked["events"]) == [19, 18, 17]
    moment = result(hook(server, "event.offline.list", filter={"=ID": ids[5]}))[0]["TIMESTAMP_X"]
    by_time = result(hook(server, "event.offline.get", clear=0, filter={"<=TIMESTAMP_X": moment}))
    assert numbers(by_time["events"]) == [0, 1, 2, 3, 4, 5]
    by_list = result(hook(server, "event.offline.list", filter={"MESSAGE_ID": [f"{1:032x}", f"{61:032x}"]}))
    assert numbers(by_list) == [1, 61]
    assert numbers(result(hook(server, "event.offline.list", filter={"PROCESS_ID": picked["process_id"]}))) == [
        17, 18, 19]


@pytest.mark.parametrize(("method", "body", "argument"), [
    ("event.offline.get", {"limit": 0}, "LIMIT"),
    ("event.offline.get", {"limit": "-3"}, "LIMIT"),
    ("event.offline.get", {"filter": {"PROCESS_ID": "x"}}, "FILTER"),  # event.offline.list's only
    ("event.offline.get", {"filter": {"><ID": [1, 2]}}, "FILTER"),
    ("event.offline.get", {"filter": {">ID": [1, 2]}}, "FILTER"),
    ("event.offline.get", {"filter": {"ID": "abc"}}, "FILTER"),
    ("event.offline.get", {"filter": {"TIMESTAMP_X": "yesterday"}}, "FILTER"),
    ("event.offline.get", {"filter": "ID=1"}, "FILTER"),
    ("event.offline.get", {"order": {"ID": "UP"}}, "ORDER"),
    ("event.offline.get", {"order": {"DATA": "ASC"}}, "ORDER"),
    ("event.offline.get", {"process_id": ["x"]}, "PROCESS_ID"),
    ("event.offline.list", {"filter": {"ERROR": "maybe"}}, "FILTER"),
    ("event.offline.list", {"filter": {"ID": list(range(1001))}}, "FILTER"),
    ("event.offline.clear", {}, "PROCESS_ID"),
    ("event.offline.clear", {"process_id": "  "}, "PROCESS_ID"),
    ("event.offline.clear", {"process_id": "p", "id": "1"}, "ID"),
    ("event.offline.clear", {"process_id": "p", "id": [1, 0]}, "ID"),
    ("event.offline.clear", {"process_id": "p", "message_id": ["short"]}, "MESSAGE_ID"),
    ("event.offline.clear", {"process_id": "p", "message_id": [{"a": 1}]}, "MESSAGE_ID"),
    ("event.offline.error", {"process_id": "p"}, "MESSAGE_ID"),
    ("event.offline.error", {"process_id": "p", "message_id": "0" * 32}, "MESSAGE_ID"),
    ("event.offline.error", {"message_id": ["0" * 32]}, "PROCESS_ID"),
])
def test_parameter_errors_name_the_parameter(shared, method, body, argument):
    response = hook(shared, method, **body)
    assert error(response) == (400, "ERROR_ARGUMENT"), response.text
    assert response.json()["argument"] == argument


def test_each_owner_reads_its_own_queue_and_only_admins_read(server):
    app = App(server)
    clerk = cli(server.data_dir, "user", "create", "--name", "Clerk", "--numbers-modify")
    write(server, range(3))
    write(server, range(3, 5), owner=app.client_id)
    admin, clerks = app.tokens()["access_token"], app.tokens(user=int(clerk))["access_token"]
    mine = call(server, "event.offline.get", json={"auth": admin, "clear": 0}).json()["result"]
    assert numbers(mine["events"]) == [3, 4]
    assert numbers(result(hook(server, "event.offline.get", clear=0))["events"]) == [0, 1, 2]
    foreign = hook(server, "event.offline.clear", process_id=mine["process_id"])  # not the webhooks' records
    assert result(foreign) is True
    assert len(call(server, "event.offline.list", json={"auth": admin}).json()["result"]) == 2
    for method in ("event.offline.get", "event.offline.list", "event.offline.clear", "event.offline.error"):
        response = call(server, method, json={"auth": clerks, "process_id": "p", "message_id": []})
        assert error(response) == (403, "ACCESS_DENIED") and response.json()["error_description"] == "Access denied!"
    assert result(call(server, "event.offline.clear", json={"auth": admin, "process_id": mine["process_id"]}))
    assert call(server, "event.offline.list", json={"auth": admin}).json()["result"] == []
