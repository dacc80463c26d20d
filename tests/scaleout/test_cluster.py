"""Scale-out with real processes (docs/behaviour.md#scale-faults): 2 `api` + 3 `sip` sipline processes on one PostgreSQL,
300 cloud lines registered to Kamailio, and the faults: SIGKILL, SIGSTOP past the lease, a PostgreSQL
restart, Redis going away."""

from __future__ import annotations

import base64
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.integration.server import SiplineProcess
from tests.interop.conftest import FAST, SHORT_EXPIRES
from tests.peers import on_a_free_port
from tests.peers.kamailio import Kamailio, password
from tests.peers.redis import RedisServer
from tests.stores import fresh_postgres, run_sql
from tests.waiting import wait_until

LINES = 300
LEASE = 2.0  # seconds


class Cluster:
    def __init__(self, root: Path, kamailio: Kamailio, *, redis_url: str | None = None) -> None:
        self.root, self.kamailio = root, kamailio
        self.database_url = fresh_postgres()
        self.env = {"SIPLINE_DATABASE_URL": self.database_url,
                    "SIPLINE_SECRET_KEY": base64.b64encode(os.urandom(32)).decode(),
                    "SIPLINE_LOG_LEVEL": "info", "SIPLINE_TEST_LOG_LEVEL": "info"}
        extra = ("--redis-url", redis_url) if redis_url else ()
        self.apis = [SiplineProcess(root / f"api{i}", "--role", "api", "--max-cloud-lines", "1000", *extra,
                                    env=self.env) for i in range(2)]
        self.sips = [SiplineProcess(root / f"sip{i}", "--role", "sip", "--allow-private-targets", *FAST,
                                    "--lease-time", str(LEASE), "--reconcile-interval", "5", env=self.env)
                     for i in range(3)]

    def start(self) -> Cluster:
        for process in [*self.apis, *self.sips]:
            process.start()
        self.path = "/rest/" + self.apis[0].webhook.split("/rest/", 1)[1]
        return self

    def stop(self) -> None:
        for process in [*self.apis, *self.sips]:
            if process.proc is not None and process.proc.poll() is None:
                os.kill(process.proc.pid, signal.SIGCONT)
            process.stop()

    def call(self, index: int, method: str, **kw) -> httpx.Response:
        return httpx.post(f"http://127.0.0.1:{self.apis[index % 2].port}{self.path}{method}", timeout=10, **kw)

    def add_lines(self, count: int, first: int = 1) -> list[str]:
        users = [f"user{number:04d}" for number in range(first, first + count)]
        for number, user in enumerate(users):
            response = self.call(number, "voximplant.sip.add", json={
                "TYPE": "cloud", "TITLE": user, "SERVER": f"127.0.0.1:{self.kamailio.port}", "LOGIN": user,
                "PASSWORD": password(user)})
            assert response.status_code == 200, response.text
        return users

    def statuses(self) -> dict[str, int]:
        return dict(run_sql(self.database_url, "SELECT status_result, count(*) FROM registration GROUP BY 1"))

    def owners(self) -> dict[str, int]:
        return dict(run_sql(self.database_url, "SELECT lease_owner, count(*) FROM registration GROUP BY 1"))

    def worker(self, process: SiplineProcess) -> str:
        metrics = httpx.get(f"http://127.0.0.1:{process.port}/metrics", timeout=5).text
        return re.search(r'sipline_leases_held\{worker="([^"]+)"\}', metrics).group(1)

    def lines_of(self, worker: str) -> list[str]:
        return [login for (login,) in run_sql(self.database_url, "SELECT l.login FROM registration r JOIN line l "
                                              f"ON l.id = r.line_id WHERE r.lease_owner = '{worker}'")]


def sip_port_of(contact: str) -> int:
    return int(re.search(r"@127\.0\.0\.1:(\d+)", contact).group(1))


def seconds_until(condition, timeout: float, what: str, *, check=None) -> float:
    """Seconds until `condition()` held; `check()` (an invariant) runs on every poll."""
    began = time.monotonic()

    def holds() -> bool:
        if check is not None:
            check()
        return condition()

    wait_until(holds, timeout, interval=0.1, message=f"not within {timeout} s: {what}")
    return time.monotonic() - began


@pytest.fixture
def kamailio(tmp_path):
    """Grants SHORT_EXPIRES: every line refreshes every 5.4–6 s, so refreshes race the faults below."""
    defines = {"KAM_MIN_EXPIRES": "10", "KAM_MAX_EXPIRES": str(SHORT_EXPIRES)}
    with Kamailio(tmp_path / "kamailio", defines=defines) as registrar:
        yield registrar


@pytest.fixture
def cluster(tmp_path, kamailio):
    running = Cluster(tmp_path, kamailio).start()
    yield running
    running.stop()


def one_contact_each(cluster: Cluster) -> None:
    """Never two of our contacts for one line in Kamailio's location table. The usrloc counters are
    read without the AoR locks, so they are off while REGISTERs are being saved (a takeover's REGISTER
    adds our Contact and retires the old one, one after the other); a mismatch is checked against a
    dump, which reads each AoR under its lock."""
    users, contacts = cluster.kamailio.location_counts()
    if contacts != users:
        doubled = {user: found for user, found in cluster.kamailio.all_contacts().items() if len(found) > 1}
        assert not doubled, f"two workers registered one line: {doubled}"


def registered(cluster: Cluster, count: int) -> bool:
    return cluster.statuses() == {"success": count} and cluster.kamailio.location_counts() == (count, count)


def registered_by(cluster: Cluster, processes: list[SiplineProcess], users: list[str]) -> bool:
    """Each user's one contact in Kamailio is at one of these processes' SIP ports."""
    ports = {process.sip_port for process in processes}
    for user in users:
        found = cluster.kamailio.contacts(user)
        if len(found) != 1 or sip_port_of(found[0]) not in ports:
            return False
    return True


def test_sigkill_and_sigstop_of_sip_workers(cluster):
    cluster.add_lines(LINES)
    seconds_until(lambda: registered(cluster, LINES), 60, "300 lines registered", check=lambda: one_contact_each(cluster))
    owners = cluster.owners()
    assert len(owners) == 3 and all(count == LINES // 3 for count in owners.values()), owners  # fair shares

    # SIGKILL one worker: the others take its lines within two lease periods
    victim, survivors = cluster.sips[0], cluster.sips[1:]
    victim_id = cluster.worker(victim)
    orphans = cluster.lines_of(victim_id)
    assert len(orphans) == LINES // 3 and registered_by(cluster, [victim], orphans)
    victim.kill(signal.SIGKILL)
    took = seconds_until(lambda: registered_by(cluster, survivors, orphans), 2 * LEASE + 1,
                      "the killed worker's lines re-registered by the others", check=lambda: one_contact_each(cluster))
    assert victim_id not in cluster.owners() and registered(cluster, LINES)
    print(f"SIGKILL: lines back through the others in {took:.1f} s (lease {LEASE} s)")
    moved = "SELECT DISTINCT l.login FROM line_history h JOIN line l ON l.id = h.line_id WHERE h.cause = 'lease moved'"
    wait_until(lambda: set(orphans) <= {login for (login,) in run_sql(cluster.database_url, moved)}, 5,
               message="each line taken over has `lease moved` in its history (docs/behaviour.md#line-history)")

    # SIGSTOP a worker past its lease, then SIGCONT: it finds its leases gone and stops refreshing them
    stopped, other = survivors
    stopped_id = cluster.worker(stopped)
    orphans = cluster.lines_of(stopped_id)
    os.kill(stopped.proc.pid, signal.SIGSTOP)
    took = seconds_until(lambda: registered_by(cluster, [other], orphans), 2 * LEASE + 1,
                      "the stopped worker's lines taken over", check=lambda: one_contact_each(cluster))
    print(f"SIGSTOP: lines taken over in {took:.1f} s")
    os.kill(stopped.proc.pid, signal.SIGCONT)
    seconds_until(lambda: cluster.worker(stopped) == stopped_id, 5, "the resumed worker answers")
    # from now on it may win lines back only through new leases (rebalancing), never by refreshing old ones
    for _ in range(int(2 * LEASE / 0.1)):
        one_contact_each(cluster)
        time.sleep(0.1)
    assert registered(cluster, LINES)
    log = (stopped.data_dir / "stderr.log").read_text()
    assert "no longer holds" in log, log[-2000:]


def pg_restart() -> None:
    """Restart the PostgreSQL server every process uses (Debian's cluster tools; CI runs as root)."""
    version, name = subprocess.run(["pg_lsclusters", "-h"], capture_output=True, text=True,
                                   check=True).stdout.split()[:2]
    subprocess.run(["pg_ctlcluster", version, name, "restart"], check=True, timeout=120)


def healthy(process: SiplineProcess) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{process.port}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_postgresql_restart(cluster):
    users = cluster.add_lines(30)
    seconds_until(lambda: registered(cluster, 30), 60, "lines registered")
    acknowledged = users + cluster.add_lines(5, first=31)  # acknowledged just before the restart
    pg_restart()
    processes = [*cluster.apis, *cluster.sips]
    seconds_until(lambda: all(healthy(process) for process in processes), 30, "every process healthy again")
    assert all(process.proc.poll() is None for process in processes)  # reconnected, not restarted
    for index in range(2):  # both api processes answer again, and write
        seconds_until(lambda: cluster.call(index, "voximplant.sip.get").status_code == 200, 10, "api answers")
    acknowledged += cluster.add_lines(2, first=41)
    titles = {row["TITLE"] for page in (0, 50) for row in
              cluster.call(1, "voximplant.sip.get", json={"start": page}).json()["result"]}
    assert titles == set(acknowledged)  # nothing acknowledged was lost
    seconds_until(lambda: registered(cluster, len(acknowledged)), 30,
               "lines added after the restart registered too", check=lambda: one_contact_each(cluster))

    # a change through any api process reaches the worker that holds the line within a second
    rows = cluster.call(1, "voximplant.sip.get", json={"FILTER": {"TITLE": acknowledged[0]}}).json()["result"]
    assert cluster.call(1, "voximplant.sip.delete", json={"CONFIG_ID": rows[0]["CONFIG_ID"]}).status_code == 200
    took = seconds_until(lambda: cluster.kamailio.contacts(acknowledged[0]) == [], 1.0,
                      "the owner un-REGISTERed the deleted line")
    print(f"delete through api 2 → un-REGISTER by its sip worker in {took:.2f} s")


def test_redis_going_away(tmp_path, kamailio):
    redis = RedisServer(tmp_path / "redis").start()
    cluster = Cluster(tmp_path, kamailio, redis_url=redis.url)
    try:
        cluster.start()
        assert cluster.call(0, "server.time").status_code == 200
        redis.stop()
        for index in range(6):  # the API keeps answering, with per-process limits
            assert cluster.call(index, "voximplant.sip.get").status_code == 200
        log = (cluster.apis[0].data_dir / "stderr.log").read_text() + (
            cluster.apis[1].data_dir / "stderr.log").read_text()
        assert "shared limits degraded" in log
        redis.start()  # on the same port

        def restored() -> bool:
            cluster.call(0, "server.time")
            cluster.call(1, "server.time")
            return "shared limits restored" in (cluster.apis[0].data_dir / "stderr.log").read_text()

        seconds_until(restored, 10, "the API back on Redis")
    finally:
        cluster.stop()
        redis.stop()


def test_api_workers_share_one_port(tmp_path):
    env = {"SIPLINE_DATABASE_URL": fresh_postgres()}
    # workers share one port, which they are given: --port 0 would give each its own
    api = on_a_free_port(lambda port: SiplineProcess(tmp_path / "api", "--role", "api", "--workers", "3",
                                                     port=port, env=env).start(), udp_too=False)
    try:
        children = subprocess.run(["pgrep", "-P", str(api.proc.pid)], capture_output=True, text=True).stdout.split()
        assert len(children) == 2
        for _ in range(60):  # a new connection each time: the kernel spreads them over the three
            with httpx.Client() as client:
                assert client.post(api.webhook + "voximplant.sip.get").status_code == 200
        os.kill(int(children[0]), signal.SIGKILL)  # one worker dies: the port keeps answering
        for _ in range(20):
            with httpx.Client() as client:
                assert client.post(api.webhook + "server.time").status_code == 200
    finally:
        api.stop()
    wait_until(lambda: subprocess.run(["pgrep", "-f", str(tmp_path / "api")], capture_output=True).returncode != 0,
               10, interval=0.2, message="a worker outlived the process that started it")


def test_office_bindings_are_shared_by_every_sip_node(tmp_path):
    from tests.interop.test_office_registrar import MD5_FIRST, NO_ABUSE_LIMITS, Office
    from tests.peers import sipp

    env = {"SIPLINE_DATABASE_URL": fresh_postgres(), "SIPLINE_SECRET_KEY": base64.b64encode(os.urandom(32)).decode()}
    api = SiplineProcess(tmp_path / "api", "--role", "api", env=env).start()
    nodes = [SiplineProcess(tmp_path / f"sip{i}", "--role", "sip", *MD5_FIRST, *NO_ABUSE_LIMITS, env=env).start()
             for i in range(2)]
    try:
        office = Office(api)
        ports = []
        for index, node in enumerate(nodes):  # the PBX registers a contact at each node
            port, answer = on_a_free_port(lambda port: (port, sipp.register_office(
                tmp_path / f"sipp{index}", node.sip_port, port, [office.user])))
            assert answer[0].startswith("result 200"), answer
            ports.append(port)
        contacts = sorted(binding["CONTACT"] for binding in office.bindings())
        assert contacts == sorted(f"sip:{office.user[0]}@127.0.0.1:{port};transport=udp" for port in ports)
        # `Contact: *` at the second node removes what the first one accepted too
        assert sipp.register_office(tmp_path / "wild", nodes[1].sip_port, None, [office.user],
                                    wildcard=True, expires=0) == ["result 200 none"]
        assert office.bindings() == []
    finally:
        for process in [api, *nodes]:
            process.stop()
