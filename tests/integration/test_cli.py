"""The `sipline` command, run as operators run it: bad settings are refused with a clear message and exit status
2, what cannot be done with one line and 1; operator commands never make a store; `line list|show` against a
running and a stopped server, with a cloud line registered at SIPp and an office line SIPp registered."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from datetime import datetime
from importlib.metadata import version

import pytest

from tests.integration.operator import Handler, call, cli, fields, hook_call
from tests.integration.operator import result as rest_result
from tests.integration.server import SiplineProcess
from tests.peers import sipp
from tests.peers.sipp import SippRegistrar
from tests.stores import ON_POSTGRES, execute, store_env
from tests.waiting import wait_until


def sipline(*args: str, env: dict[str, str] | None = None, cwd=None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sipline", *args], capture_output=True, text=True, timeout=30,
                          env={**os.environ, **(env or {})}, cwd=cwd)


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--port", "65536"], {}, "port: '65536' is not a port number"),
        (["--port", "http"], {}, "port: 'http' is not a port number"),
        ([], {"SIPLINE_PORT": "99999"}, "port: '99999' is not a port number"),
        (["--tls-cert", "/nonexistent.pem"], {}, "--tls-cert and --tls-key go together"),
        (["--tls-cert", "/etc/hostname", "--tls-key", "/nonexistent"], {}, "is not a readable file"),
        (["--max-cloud-lines", "-1"], {}, "max-cloud-lines: '-1' is not a positive whole number"),
        (["--incoming-server", "bad host"], {}, "incoming-server: 'bad host' is not a host name"),
        (["--log-level", "loud"], {}, "log-level"),
        ([], {"SIPLINE_ACCESS_LOG": "maybe"}, "SIPLINE_ACCESS_LOG"),
        (["--tls", "mine"], {}, "invalid choice"),
    ],
)
def test_bad_settings(tmp_path, args, env, message):
    result = sipline("serve", "--data-dir", str(tmp_path), *args, env=env)
    assert result.returncode == 2 and message in result.stderr, result.stderr
    assert result.stdout == ""


def test_bad_secret_key(tmp_path):
    result = sipline("serve", "--data-dir", str(tmp_path), "--port", "1", env={"SIPLINE_SECRET_KEY": "c2hvcnQ="})
    assert result.returncode == 2 and "SIPLINE_SECRET_KEY must decode to 32 bytes" in result.stderr


def test_version():
    result = sipline("--version")
    assert result.returncode == 0 and result.stdout == f"sipline {version('sipline')}\n" and result.stderr == ""


# Every command but `serve`, with what it needs besides a store; none of them may make one.
OPERATOR_COMMANDS = [
    ["portal", "create", "--domain", "b24.example.com"], ["portal", "list"], ["portal", "list", "--json"],
    ["portal", "limit", "--max-lines", "5"], ["portal", "digest", "--digest-algorithms", "MD5"],
    ["user", "create", "--name", "N"], ["user", "deactivate", "--user", "2"], ["user", "activate", "--user", "2"],
    ["webhook", "create"], ["webhook", "list"], ["webhook", "revoke", "--id", "1"],
    ["app", "create", "--name", "N"], ["app", "list"], ["app", "install", "--client-id", "local.x"],
    ["app", "uninstall", "--client-id", "local.x"], ["line", "list"], ["line", "show", "1"], ["rotate-key"],
    ["migrate-store", "--to", "postgresql://nobody@127.0.0.1:1/none"],  # the source is looked for first
]


SINGLE = ("rotate-key", "migrate-store")  # commands without an action


@pytest.mark.parametrize("args", OPERATOR_COMMANDS, ids=" ".join)
def test_a_data_dir_without_a_store_is_refused_and_left_as_it_was(tmp_path, args):
    mistyped, empty = tmp_path / "sipline-dat", tmp_path / "empty"
    empty.mkdir()
    for data_dir, said in ((mistyped, f"no data dir {mistyped}"), (empty, "holds no sipline store")):
        result = sipline(*args, "--data-dir", str(data_dir), env=store_env(data_dir))
        assert result.returncode == 1 and result.stdout == "", result
        assert len(result.stderr.splitlines()) == 1 and said in result.stderr and "usage:" not in result.stderr
        assert result.stderr.startswith(f"sipline {' '.join(args[:2] if args[0] not in SINGLE else args[:1])}: ")
    assert not mistyped.exists() and list(empty.iterdir()) == []
    if ON_POSTGRES:  # the empty database is still empty
        assert execute(empty, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") == [(0,)]


def test_a_wrong_key_is_refused_at_start(tmp_path):
    from tests.integration.server import SiplineProcess

    process = SiplineProcess(tmp_path / "data").start()
    import httpx

    httpx.post(process.webhook + "voximplant.sip.add", json={"SERVER": "s.example.invalid", "LOGIN": "u",
                                                             "PASSWORD": "p"})
    process.stop()
    (tmp_path / "data" / "secret.key").write_bytes(b"x" * 32)
    from tests.stores import store_env

    result = sipline("serve", "--data-dir", str(tmp_path / "data"), "--port", str(process.port),
                     env=store_env(tmp_path / "data"))
    assert result.returncode == 2 and "does not open with this key" in result.stderr


def test_https_with_the_operators_certificate(tmp_path):
    import ssl

    import httpx

    from sipline.server.tls import ensure_self_signed
    from tests.integration.server import SiplineProcess

    ca, cert, key = ensure_self_signed(tmp_path / "pki", "127.0.0.1")
    process = SiplineProcess(tmp_path / "data", "--tls-cert", str(cert), "--tls-key", str(key)).start()
    try:
        assert process.webhook.startswith("https://127.0.0.1:")
        context = ssl.create_default_context(cafile=str(ca))
        response = httpx.get(process.webhook + "voximplant.sip.connector.status", verify=context)
        assert response.json()["result"]["PAID"] is True
    finally:
        process.stop()


def test_webhook_codes_are_stored_hashed(tmp_path):
    import hashlib

    from tests.integration.server import SiplineProcess

    process = SiplineProcess(tmp_path / "data").start()
    process.stop()
    code = process.webhook.rstrip("/").rsplit("/", 1)[1]
    from tests.stores import stored_bytes

    stored = stored_bytes(tmp_path / "data")
    assert code.encode() not in stored
    assert hashlib.sha256(code.encode()).hexdigest().encode() in stored


# -- sipline line list|show, against a running and a stopped server ----------------------------------------------

LIST_COLUMNS = ["CONFIG_ID", "TYPE", "TITLE", "SERVER", "LOGIN", "STATUS", "CODE", "MESSAGE", "BINDINGS", "UPDATED",
                "PORTAL"]
SECRETS = ("provider-secret", "backup-secret", "trunk-secret")


def operator(data_dir, *args: str) -> subprocess.CompletedProcess[str]:
    return sipline(*args, "--data-dir", str(data_dir), env=store_env(data_dir))


def succeeds(data_dir, *args: str) -> str:
    done = operator(data_dir, *args)
    assert done.returncode == 0 and done.stderr == "", done
    assert not any(secret in done.stdout for secret in SECRETS)
    return done.stdout


def listed(data_dir, *args: str) -> dict[int, dict]:
    return {row["CONFIG_ID"]: row for row in json.loads(succeeds(data_dir, "line", "list", "--json", *args))}


def table(output: str) -> list[list[str]]:
    """A table's rows as cells: columns stand two spaces or more apart, a cell has single spaces at most."""
    return [re.split(r" {2,}", line) for line in output.splitlines()]


def test_line_list_and_show_while_serving_and_stopped(tmp_path):
    data = tmp_path / "data"
    process = SiplineProcess(data, "--allow-private-targets").start()
    try:
        with SippRegistrar(tmp_path / "provider", "ok") as provider:
            def add(hook: str = process.webhook, host: str = "127.0.0.1", **body) -> dict:
                return rest_result(hook_call(hook, process, "voximplant.sip.add", host=host, json=body))

            good = add(TITLE="Main trunk", SERVER=f"127.0.0.1:{provider.port}", LOGIN="trunk1",
                       PASSWORD="provider-secret")
            bad = add(TITLE="Backup", SERVER="sip.example.invalid", LOGIN="200", PASSWORD="backup-secret")
            office = add(TYPE="office", TITLE="Office PBX", SERVER="pbx.example.invalid", LOGIN="trunk",
                         PASSWORD="trunk-secret")
            idle = add(TYPE="office", TITLE="Idle PBX", SERVER="pbx.example.invalid", LOGIN="idle")
            portal_b = fields(cli(data, "portal", "create", "--domain", "localhost", "--title", "B"))
            other = add(portal_b["webhook"], "localhost", TITLE="B trunk", SERVER="sip.example.invalid", LOGIN="300")
            pbx = (office["INCOMING_LOGIN"], office["INCOMING_PASSWORD"])
            assert sipp.register_office(tmp_path / "pbx", process.sip_port, None, [pbx]) == ["result 200 expires=600"]
            ids = {name: int(row["CONFIG_ID"]) for name, row in
                   (("good", good), ("bad", bad), ("office", office), ("idle", idle), ("other", other))}

            def settled() -> dict[int, dict]:
                rows = listed(data)
                done = (rows[ids["good"]]["STATUS"], rows[ids["bad"]]["STATUS"], rows[ids["other"]]["STATUS"])
                return rows if done == ("success", "error", "error") else {}

            running = wait_until(settled, 20, interval=0.5, message=lambda: f"lines never settled: {listed(data)}")
            check_rows(running, ids)
            check_table_and_show(data, ids, office)
            check_filters(data, ids)
            process.stop()  # the provider still answers: nothing changes but that no server runs
        assert listed(data) == running
        check_table_and_show(data, ids, office)
    finally:
        process.stop()


def check_rows(rows: dict[int, dict], ids: dict[str, int]) -> None:
    assert list(rows) == sorted(ids.values())
    assert {key: rows[ids["good"]][key] for key in ("TYPE", "TITLE", "LOGIN", "STATUS", "CODE", "MESSAGE", "BINDINGS",
                                                    "PORTAL")} == {
        "TYPE": "cloud", "TITLE": "Main trunk", "LOGIN": "trunk1", "STATUS": "success", "CODE": 200, "MESSAGE": "",
        "BINDINGS": None, "PORTAL": "127.0.0.1"}
    assert (rows[ids["bad"]]["STATUS"], rows[ids["bad"]]["CODE"], rows[ids["bad"]]["MESSAGE"]) == (
        "error", 502, "Unable to resolve hostname")
    assert datetime.fromisoformat(rows[ids["bad"]]["UPDATED"]).tzinfo is not None  # ISO 8601 with its offset
    assert {key: rows[ids["office"]][key] for key in ("TYPE", "STATUS", "CODE", "MESSAGE", "BINDINGS")} == {
        "TYPE": "office", "STATUS": None, "CODE": None, "MESSAGE": None, "BINDINGS": 1}
    assert rows[ids["office"]]["UPDATED"] is not None and rows[ids["idle"]]["UPDATED"] is None
    assert rows[ids["idle"]]["BINDINGS"] == 0 and rows[ids["other"]]["PORTAL"] == "localhost"


def check_filters(data, ids: dict[str, int]) -> None:
    assert list(listed(data, "--portal", "localhost")) == [ids["other"]]
    assert list(listed(data, "--status", "error")) == [ids["bad"], ids["other"]]
    assert list(listed(data, "--status", "error", "--portal", "127.0.0.1")) == [ids["bad"]]
    assert list(listed(data, "--status", "success")) == [ids["good"]]
    assert table(succeeds(data, "line", "list", "--status", "wait")) == [LIST_COLUMNS]  # the header alone
    idle = json.loads(succeeds(data, "line", "show", str(ids["idle"]), "--portal", "127.0.0.1", "--json"))
    assert idle["BINDINGS"] == [] and idle["LINE"]["TITLE"] == "Idle PBX"
    refused = operator(data, "line", "show", str(ids["good"]), "--portal", "localhost")
    assert refused.returncode == 1 and refused.stdout == ""
    assert refused.stderr == f"sipline line show: error: no line {ids['good']} on portal localhost\n"


def check_table_and_show(data, ids: dict[str, int], office: dict) -> None:
    shown = table(succeeds(data, "line", "list"))
    assert shown[0] == LIST_COLUMNS and len(shown) == 1 + len(ids)
    by_id = {int(row[0]): dict(zip(LIST_COLUMNS, row, strict=True)) for row in shown[1:]}
    assert by_id[ids["office"]]["BINDINGS"] == "1" and by_id[ids["office"]]["STATUS"] == "-"
    assert by_id[ids["bad"]]["MESSAGE"] == "Unable to resolve hostname" and by_id[ids["bad"]]["BINDINGS"] == "-"
    assert by_id[ids["good"]]["TITLE"] == "Main trunk" and by_id[ids["good"]]["MESSAGE"] == "-"

    cloud = fields(succeeds(data, "line", "show", str(ids["good"])))
    assert (cloud["CONFIG_ID"], cloud["TYPE"], cloud["PORTAL"], cloud["PASSWORD"]) == (
        str(ids["good"]), "cloud", "127.0.0.1", "(hidden)")
    assert (cloud["STATUS_RESULT"], cloud["STATUS_CODE"], cloud["ERROR_MESSAGE"]) == ("success", "200", "-")
    assert cloud["REG_ID"] and cloud["LAST_UPDATED"]
    shown = json.loads(succeeds(data, "line", "show", str(ids["office"]), "--json"))
    assert shown["LINE"]["INCOMING_LOGIN"] == office["INCOMING_LOGIN"]
    assert shown["LINE"]["INCOMING_PASSWORD"] == shown["LINE"]["PASSWORD"] == "(hidden)"
    assert office["INCOMING_PASSWORD"] not in json.dumps(shown) and shown["REGISTRATION"] is None
    [binding] = shown["BINDINGS"]
    assert binding["CONTACT"].startswith(f"sip:{office['INCOMING_LOGIN']}@127.0.0.1:")
    assert binding["SOURCE_ADDRESS"].startswith("127.0.0.1:") and binding["TRANSPORT"] == "udp"
    assert 0 < binding["EXPIRES_IN"] <= 600 and binding["USER_AGENT"] == "sipp-office"
    text = succeeds(data, "line", "show", str(ids["office"]))
    assert "bindings (sipline.sip.bindings): 1" in text and binding["CONTACT"] in text
    assert office["INCOMING_PASSWORD"] not in text
    check_history(data, ids, binding["CONTACT"])


def check_history(data, ids: dict[str, int], contact: str) -> None:
    """--history: the line's status changes as sipline.sip.history gives them, newest first."""
    cloud = json.loads(succeeds(data, "line", "show", str(ids["bad"]), "--history", "--json"))["HISTORY"]
    assert [(entry["STATUS_RESULT"], entry["STATUS_CODE"], entry["CAUSE"]) for entry in cloud] == [
        ("error", 502, "dns")]  # no REGISTER was sent: it never was in_progress
    assert datetime.fromisoformat(cloud[0]["TIME"]).tzinfo is not None
    office = json.loads(succeeds(data, "line", "show", str(ids["office"]), "--history", "--json"))["HISTORY"]
    assert [(entry["CAUSE"], entry["CONTACT"]) for entry in office] == [("binding added", contact)]
    text = succeeds(data, "line", "show", str(ids["bad"]), "--history")
    assert "history (sipline.sip.history): " in text and "Unable to resolve hostname" in text
    assert "HISTORY" not in json.loads(succeeds(data, "line", "show", str(ids["bad"]), "--json"))


# -- exit status: 2 and the usage for what was asked wrong, 1 and one line for what cannot be done ------------------

@pytest.fixture
def server(tmp_path):
    process = SiplineProcess(tmp_path / "data").start()
    yield process
    process.stop()


USAGE_ERRORS = [
    (["portal", "create", "--domain", "bad host"], "invalid portal domain"),
    (["portal", "limit"], "give --rate-limit, --max-lines or both"),
    (["portal", "limit", "--max-lines", "0"], "max-lines"),
    (["user", "deactivate", "--user", "x"], "is not a user ID"),
    (["webhook", "create", "--scope", "telephny"], "unknown 'telephny'; known scopes: "),
    (["webhook", "create", "--scope", " , "], "names no scope"),
    (["webhook", "revoke", "--id", "x"], "is not a webhook ID"),
    (["webhook", "list", "--bogus"], "unrecognized arguments: --bogus"),
    (["app", "create", "--name", "N", "--scope", "telephony,bogus"], "unknown 'bogus'"),
    (["app", "install"], "the following arguments are required: --client-id"),
    (["line", "show"], "the following arguments are required: CONFIG_ID"),
    (["line", "show", "x1"], "'x1' is not a CONFIG_ID"),
    (["line", "list", "--status", "registered"], "invalid choice: 'registered'"),
    (["line", "list", "--json", "extra"], "unrecognized arguments: extra"),
]
RUNTIME_ERRORS = [
    (["portal", "create", "--domain", "127.0.0.1"], "a portal 127.0.0.1 exists already"),
    (["portal", "limit", "--portal", "nope.example", "--max-lines", "5"], "no portal nope.example"),
    (["user", "deactivate", "--user", "7"], "no user 7 on this portal"),
    (["webhook", "create", "--user", "7"], "portal 127.0.0.1 has no user 7"),
    (["webhook", "revoke", "--id", "99"], "no webhook 99 on this portal"),
    (["app", "install", "--client-id", "local.nope"], "no app local.nope"),
    (["line", "show", "99"], "no line 99"),
    (["line", "list", "--portal", "nope.example"], "no portal nope.example"),
]


def test_usage_errors_exit_2_with_the_usage_and_runtime_errors_1_with_one_line(server):
    hooks, apps = (succeeds(server.data_dir, kind, "list", "--json") for kind in ("webhook", "app"))
    for args, said in USAGE_ERRORS:
        done = operator(server.data_dir, *args)
        assert done.returncode == 2 and done.stdout == "", (args, done)
        assert done.stderr.startswith(f"usage: sipline {args[0]} {args[1]} ") and said in done.stderr, (args, done)
    for args, said in RUNTIME_ERRORS:
        done = operator(server.data_dir, *args)
        assert done.returncode == 1 and done.stdout == "", (args, done)
        assert done.stderr == f"sipline {args[0]} {args[1]}: error: {said}\n", (args, done)
    # what was refused made nothing
    assert [succeeds(server.data_dir, kind, "list", "--json") for kind in ("webhook", "app")] == [hooks, apps]


def test_an_unknown_scope_is_refused_with_the_known_ones(server):
    done = operator(server.data_dir, "webhook", "create", "--scope", "telephony,crn")
    assert done.returncode == 2 and "unknown 'crn'" in done.stderr
    known = done.stderr.rsplit("known scopes: ", 1)[1].strip().split(", ")
    assert {"telephony", "user", "crm"} <= set(known) and known == sorted(known)
    assert len(json.loads(succeeds(server.data_dir, "webhook", "list", "--json"))) == 1
    made = succeeds(server.data_dir, "webhook", "create", "--scope", "telephony,crm").strip()
    assert made.startswith(f"http://127.0.0.1:{server.port}/rest/1/")


def test_an_app_whose_handler_does_not_take_the_install_is_not_kept(server):
    with socket.socket() as probe:  # a port nothing listens on: connections to it are refused
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}/install"
        done = operator(server.data_dir, "app", "create", "--name", "Unreachable", "--handler", closed)
    assert done.returncode == 1 and done.stdout == "", done  # no client_id or secret of an app that is not there
    assert done.stderr.startswith(f"sipline app create: error: the handler {closed} is unreachable (")
    assert len(done.stderr.splitlines()) == 1 and "nothing was kept" in done.stderr
    failing = Handler(status=500)
    try:
        done = operator(server.data_dir, "app", "create", "--name", "Failing", "--handler", failing.url)
        assert done.returncode == 1 and done.stderr == (
            f"sipline app create: error: the handler {failing.url} answered 500: the app was not installed, "
            "nothing was kept\n"), done
        [(_, form)] = failing.received
        token = form["auth[access_token]"][0]  # the hand-off's token died with the app
        assert call(server, "profile", params={"auth": token}).status_code == 401
    finally:
        failing.close()
    assert json.loads(succeeds(server.data_dir, "app", "list", "--json")) == []
    working = Handler()
    try:
        made = fields(succeeds(server.data_dir, "app", "create", "--name", "Working", "--handler", working.url))
    finally:
        working.close()
    assert made["installed"] == "yes (handler answered 200)"
    assert [(app["CLIENT_ID"], app["STATE"]) for app in
            json.loads(succeeds(server.data_dir, "app", "list", "--json"))] == [(made["client_id"], "installed")]
