"""The SIP messages of each line's last transactions (docs/behaviour.md#line-trace), kept in memory, sans-IO.

Recording is on the hot path of every REGISTER and its answers, so it keeps the
bytes and where they went as they are (a tuple, no parsing, no copy); reading
(rare: an operator asks) redacts and orders them.

    record(key, transaction, entry) ─► per key: the last TRANSACTIONS transactions, ≤ MAX_BYTES
    messages(key) ─► TracedMessage, oldest first, secrets replaced by `…`
"""

from __future__ import annotations

import re
from typing import NamedTuple

TRANSACTIONS = 3  # docs/behaviour.md#line-trace: at least the last 3 transactions of a line
MAX_BYTES = 65536  # docs/behaviour.md#line-trace: at most 64 KB of messages per line
# docs/behaviour.md#line-trace: at most this much of all lines' messages (≈ 5 KB a registered line: 25,000 lines);
# past it the lines whose last transaction began longest ago lose their trace (a PBX can fill 64 KB of a line)
MAX_TOTAL = 128 * 1024 * 1024
HIDDEN = "…"

# (wall-clock time, outgoing, transport, local (host, port), remote (host, port), bytes as on the wire)
Entry = tuple[float, bool, str, tuple[str, int], tuple[str, int], bytes]

# RFC 3261 §22.4/§25.1 (digest-response, cnonce), RFC 2617 §3.2.3 (rspauth): what proves the
# password, in Authorization, Proxy-Authorization and Authentication-Info; RFC 7617 Basic credentials.
# A header field with its continuation lines (RFC 3261 §7.3.1 folding): `.` stops at LF, CR is kept.
_AUTH_LINE = re.compile(
    r"^((?:proxy-)?authorization|authentication-info)[ \t]*:.*(?:\n[ \t].*)*", re.IGNORECASE | re.MULTILINE
)
_SECRET_PARAM = re.compile(r'\b(response|cnonce|rspauth)([ \t]*=[ \t]*)("[^"]*"|[^\s,]+)', re.IGNORECASE)
_BASIC = re.compile(r"(:[ \t]*Basic[ \t]+)\S+", re.IGNORECASE)
# RFC 3261 §19.1.1: a password in a SIP URI's userinfo (`sip:user:password@host`), deprecated but legal
_URI_PASSWORD = re.compile(r"(\bsips?:[^:@\s;<>\"]+):[^@\s;<>\"]*@", re.IGNORECASE)


class TracedMessage(NamedTuple):
    """One message as sipline.sip.trace shows it."""

    at: float  # wall clock
    outgoing: bool
    transport: str
    local: str  # host:port
    remote: str
    text: str  # as on the wire, with secrets replaced by HIDDEN


class _Kept:
    __slots__ = ("transactions", "size")

    def __init__(self, transaction: object, entry: Entry, size: int) -> None:
        self.transactions: list[tuple[object, list[Entry]]] = [(transaction, [entry])]  # oldest first, never empty
        self.size = size


class Trace:
    """Per key (a line's id): the entries of its last `transactions` transactions, at most
    `max_bytes` of message bytes, oldest dropped first."""

    def __init__(
        self, transactions: int = TRANSACTIONS, max_bytes: int = MAX_BYTES, max_total: int = MAX_TOTAL
    ) -> None:
        self.transactions = transactions
        self.max_bytes = max_bytes
        self.max_total = max_total
        self.total = 0  # bytes of every line's messages
        self._kept: dict[int, _Kept] = {}  # the line whose last transaction began longest ago first

    def record(self, key: int, transaction: object, entry: Entry) -> None:
        """`transaction` names the transaction the message belongs to (a branch, a top Via): a
        retransmission or a response joins its request's."""
        size = len(entry[5])
        kept = self._kept.get(key)
        if kept is None:
            self._kept[key] = _Kept(transaction, entry, size)
        else:
            last = kept.transactions[-1]
            if last[0] == transaction:  # the common case: the line's current transaction
                last[1].append(entry)
            else:
                self._join(key, kept, transaction, entry)
            kept.size += size
            if kept.size > self.max_bytes:
                self._shrink(kept)
        self.total += size
        if self.total > self.max_total:
            self._evict(key)

    def _join(self, key: int, kept: _Kept, transaction: object, entry: Entry) -> None:
        """An older transaction's message (a late response), or a new transaction's first."""
        transactions = kept.transactions
        for held, entries in transactions:
            if held == transaction:
                entries.append(entry)
                return
        transactions.append((transaction, [entry]))
        self._kept[key] = self._kept.pop(key)  # now the line whose last transaction began last
        if len(transactions) > self.transactions:
            dropped = sum(len(old[5]) for old in transactions.pop(0)[1])
            kept.size -= dropped
            self.total -= dropped

    def _shrink(self, kept: _Kept) -> None:
        """Oldest messages go first; the newest one stays, whatever its size."""
        transactions = kept.transactions
        while kept.size > self.max_bytes and (len(transactions) > 1 or len(transactions[0][1]) > 1):
            entries = transactions[0][1]
            dropped = len(entries.pop(0)[5])
            kept.size -= dropped
            self.total -= dropped
            if not entries:
                transactions.pop(0)

    def _evict(self, keep: int) -> None:
        """Whole lines go, the one whose last transaction began longest ago first, but not `keep` (being recorded)."""
        while self.total > self.max_total and len(self._kept) > 1:
            oldest = iter(self._kept)
            victim = next(oldest)
            self.forget(next(oldest) if victim == keep else victim)

    def forget(self, key: int) -> None:
        kept = self._kept.pop(key, None)
        if kept is not None:
            self.total -= kept.size

    def __contains__(self, key: int) -> bool:
        return key in self._kept

    def entries(self, key: int) -> list[Entry]:
        """What is kept for `key`, oldest first, as recorded (unredacted: for messages() and tests)."""
        kept = self._kept.get(key)
        if kept is None:
            return []
        return sorted((entry for _, entries in kept.transactions for entry in entries), key=lambda entry: entry[0])

    def messages(self, key: int) -> list[TracedMessage]:
        """What is kept for `key`, oldest first, secrets replaced."""
        return [traced(entry) for entry in self.entries(key)]


def traced(entry: Entry) -> TracedMessage:
    at, outgoing, transport, local, remote, data = entry
    text = redact(data.decode("utf-8", "replace"))
    return TracedMessage(at, outgoing, transport, host_port(local), host_port(remote), text)


def redact(text: str) -> str:
    """`text` with the digest response, cnonce and rspauth, Basic credentials and any password in a
    SIP URI replaced by HIDDEN; nothing else changes."""
    text = _AUTH_LINE.sub(_redact_auth_line, text)
    return _URI_PASSWORD.sub(lambda match: f"{match.group(1)}:{HIDDEN}@", text)


def _redact_auth_line(line: re.Match[str]) -> str:
    text = _SECRET_PARAM.sub(_hidden_param, line.group(0))
    return _BASIC.sub(lambda match: match.group(1) + HIDDEN, text)


def _hidden_param(match: re.Match[str]) -> str:
    value = f'"{HIDDEN}"' if match.group(3).startswith('"') else HIDDEN
    return match.group(1) + match.group(2) + value


def host_port(address: tuple[str, int]) -> str:
    """`host:port`, an IPv6 address in brackets (RFC 3261 §25.1 hostport)."""
    host, port = address
    return f"[{host}]:{port}" if ":" in host and not host.startswith("[") else f"{host}:{port}"
