"""A real DNS server on loopback for tests: UDP and TCP on one free port, answers from a dict, built on dnslib.

    with LoopbackDns({("a.pbx.test", "A"): ["127.0.0.2"]}) as server:
        DnsResolver([server.address]) ...

A name with no records of any type answers NXDOMAIN, unless it is an ancestor of one that has some (an empty
non-terminal, RFC 8020 §2); a name with records of other types answers NOERROR with no answer (NODATA).
"""

from __future__ import annotations

import selectors
import socket
import struct
import threading
from collections.abc import Callable
from typing import Any

from dnslib import AAAA, CNAME, NAPTR, QTYPE, RCODE, RR, SRV, A, DNSRecord

DEFAULT_TTL = 60
RDATA: dict[str, Callable[[Any], Any]] = {
    "A": A,
    "AAAA": AAAA,
    "CNAME": CNAME,
    "SRV": lambda value: SRV(*value),  # (priority, weight, port, target)
    # (order, preference, flags, service, regexp, replacement); dnslib wants the three strings as bytes
    "NAPTR": lambda value: NAPTR(value[0], value[1], *(text.encode() for text in value[2:5]), value[5]),
}


class LoopbackDns:
    """A DNS server on 127.0.0.1:<free port> (UDP and TCP) answering from a dict of records."""

    def __init__(self, records: dict[tuple[str, str], list[object]] | None = None, ttl: int = DEFAULT_TTL) -> None:
        self._records: dict[tuple[str, str], tuple[list[object], int]] = {}
        self._failures: dict[str, str] = {}
        self._dropped: set[str] = set()
        self._lock = threading.Lock()
        self.queries: list[tuple[str, str]] = []
        for (name, rdtype), values in (records or {}).items():
            self.set(name, rdtype, values, ttl)

    def set(self, name: str, rdtype: str, values: list[object], ttl: int = DEFAULT_TTL) -> None:
        with self._lock:
            self._records[_key(name), rdtype.upper()] = (values, ttl)

    def fail(self, name: str, rcode: str) -> None:
        """Answer every query for `name` with `rcode`: "SERVFAIL", "REFUSED" or "NXDOMAIN"."""
        with self._lock:
            self._failures[_key(name)] = rcode

    def drop(self, name: str) -> None:
        """Never answer `name`: the client times out."""
        with self._lock:
            self._dropped.add(_key(name))

    def __enter__(self) -> LoopbackDns:
        self._udp, self._tcp = _bind_pair()
        self._wake, self._waker = socket.socketpair()
        self.address = self._udp.getsockname()[:2]
        self._thread = threading.Thread(target=self._serve, name="loopback-dns", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._waker.send(b"x")
        self._thread.join(timeout=5)
        for sock in (self._udp, self._tcp, self._wake, self._waker):
            sock.close()

    def _serve(self) -> None:
        with selectors.DefaultSelector() as selector:
            for sock in (self._udp, self._tcp, self._wake):
                selector.register(sock, selectors.EVENT_READ)
            while True:
                for key, _ in selector.select():
                    if key.fileobj is self._wake:
                        return
                    if key.fileobj is self._udp:
                        self._serve_datagram()
                    else:
                        self._serve_stream()

    def _serve_datagram(self) -> None:
        data, peer = self._udp.recvfrom(65535)
        reply = self._answer(data)
        if reply is not None:
            self._udp.sendto(reply, peer)

    def _serve_stream(self) -> None:
        connection, _ = self._tcp.accept()
        with connection:
            connection.settimeout(2)
            try:
                (length,) = struct.unpack("!H", _read(connection, 2))
                reply = self._answer(_read(connection, length))
                if reply is not None:
                    connection.sendall(struct.pack("!H", len(reply)) + reply)
            except (OSError, struct.error):
                pass  # the client went away; nothing to answer

    def _answer(self, data: bytes) -> bytes | None:
        request = DNSRecord.parse(data)
        name, rdtype = _key(str(request.q.qname)), QTYPE[request.q.qtype]
        with self._lock:
            self.queries.append((name, rdtype))
            if name in self._dropped:
                return None
            reply = request.reply()
            reply.header.rcode = getattr(RCODE, self._failures.get(name) or self._rcode(name))
            values, ttl = self._records.get((name, rdtype), ([], 0)) if name not in self._failures else ([], 0)
        for value in values:
            reply.add_answer(RR(name, getattr(QTYPE, rdtype), rdata=RDATA[rdtype](value), ttl=ttl))
        return bytes(reply.pack())

    def _rcode(self, name: str) -> str:
        exists = any(owner == name or owner.endswith("." + name) for owner, _ in self._records)
        return "NOERROR" if exists else "NXDOMAIN"


def _key(name: str) -> str:
    return name.rstrip(".").lower()


def _bind_pair() -> tuple[socket.socket, socket.socket]:
    """A UDP and a TCP socket on the same free loopback port (retried if TCP finds the port taken)."""
    for _ in range(20):
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        udp.bind(("127.0.0.1", 0))
        tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            tcp.bind(udp.getsockname())
        except OSError:
            udp.close()
            tcp.close()
            continue
        tcp.listen()
        return udp, tcp
    raise OSError("no free port for both UDP and TCP")


def _read(connection: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = connection.recv(size - len(data))
        if not chunk:
            raise OSError("short read")
        data += chunk
    return data
