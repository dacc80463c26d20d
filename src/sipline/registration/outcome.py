"""How a registration attempt ended, and what that means for STATUS_* (docs/behaviour.md#reg-retry, docs/behaviour.md#reg-status)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from sipline.sip.resolve import Target


class OutcomeKind(Enum):
    OK = "ok"
    DNS_FAIL = "dns_fail"
    TIMEOUT = "timeout"
    TRANSPORT = "transport"
    TLS_HANDSHAKE = "tls_handshake"
    TLS_CERT = "tls_cert"
    SERVER = "server"  # 408, 480, 500, 502, 503, 504, 580
    ZERO_EXPIRY = "zero_expiry"
    AUTH_FAIL = "auth_fail"
    AUTH_UNSUPPORTED = "auth_unsupported"
    REJECTED = "rejected"  # 3xx, 403, 404, other 4xx, 6xx, an unresolvable 423
    FORBIDDEN_TARGET = "forbidden_target"  # SERVER resolves into a network sipline must not reach


class FailureClass(Enum):
    TRANSIENT = "T"  # retry soon, backing off (docs/behaviour.md#reg-retry class T)
    REJECTED = "R"  # retry slowly: 300 s, 900 s, 1800 s, then hourly (docs/behaviour.md#reg-retry class R)


CLASS: dict[OutcomeKind, FailureClass] = {
    OutcomeKind.DNS_FAIL: FailureClass.TRANSIENT,
    OutcomeKind.TIMEOUT: FailureClass.TRANSIENT,
    OutcomeKind.TRANSPORT: FailureClass.TRANSIENT,
    OutcomeKind.TLS_HANDSHAKE: FailureClass.TRANSIENT,
    OutcomeKind.SERVER: FailureClass.TRANSIENT,
    OutcomeKind.ZERO_EXPIRY: FailureClass.TRANSIENT,
    OutcomeKind.TLS_CERT: FailureClass.REJECTED,
    OutcomeKind.AUTH_FAIL: FailureClass.REJECTED,
    OutcomeKind.AUTH_UNSUPPORTED: FailureClass.REJECTED,
    OutcomeKind.REJECTED: FailureClass.REJECTED,
    # a target refused by policy does not change until the operator or the line does
    OutcomeKind.FORBIDDEN_TARGET: FailureClass.REJECTED,
}

# docs/behaviour.md#reg-retry: final responses that are the server's trouble, not ours
SERVER_STATUSES = frozenset({408, 480, 500, 502, 503, 504, 580})

# docs/behaviour.md#reg-status: fixed local texts (tests compare them exactly)
DNS_FAIL_TEXT = "Unable to resolve hostname"
TIMEOUT_TEXT = "Request Timeout"
ZERO_EXPIRY_TEXT = "Registrar granted zero expiry"


@dataclass(frozen=True)
class Outcome:
    kind: OutcomeKind
    code: int  # STATUS_CODE to report
    message: str  # ERROR_MESSAGE to report ("" on success)
    granted: int | None = None  # seconds the registrar granted (OK)
    retry_after: int | None = None
    target: Target | None = None  # where the last request went
    sent_at: float | None = None  # monotonic send time of the successful request (binding deadline base)
    observed: tuple[str, int] | None = None  # our address as the registrar saw it (Via received/rport)
    min_expires: int | None = None  # a Min-Expires the registrar insisted on (kept as E_req)

    @property
    def failure_class(self) -> FailureClass | None:
        return CLASS.get(self.kind)


def response_outcome(status: int, reason: str, **details) -> Outcome:
    """A final non-2xx answer that ends the attempt: its code and phrase, cleaned (docs/behaviour.md#reg-status)."""
    kind = OutcomeKind.SERVER if status in SERVER_STATUSES else OutcomeKind.REJECTED
    return Outcome(kind, status, clean_phrase(reason, status), **details)


# RFC 3261 §21 reason phrases, for responses that arrive with an empty one
DEFAULT_PHRASES = {
    300: "Multiple Choices",
    301: "Moved Permanently",
    302: "Moved Temporarily",
    305: "Use Proxy",
    380: "Alternative Service",
    400: "Bad Request",
    401: "Unauthorized",
    402: "Payment Required",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    407: "Proxy Authentication Required",
    408: "Request Timeout",
    410: "Gone",
    413: "Request Entity Too Large",
    414: "Request-URI Too Long",
    415: "Unsupported Media Type",
    416: "Unsupported URI Scheme",
    420: "Bad Extension",
    421: "Extension Required",
    423: "Interval Too Brief",
    480: "Temporarily Unavailable",
    481: "Call/Transaction Does Not Exist",
    482: "Loop Detected",
    483: "Too Many Hops",
    484: "Address Incomplete",
    485: "Ambiguous",
    486: "Busy Here",
    487: "Request Terminated",
    488: "Not Acceptable Here",
    491: "Request Pending",
    493: "Undecipherable",
    500: "Server Internal Error",
    501: "Not Implemented",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Server Time-out",
    505: "Version Not Supported",
    513: "Message Too Large",
    600: "Busy Everywhere",
    603: "Decline",
    604: "Does Not Exist Anywhere",
    606: "Not Acceptable",
}
MAX_PHRASE = 255


def clean_phrase(reason: str, status: int) -> str:
    """docs/behaviour.md#reg-status: UTF-8, control characters removed, trimmed, ≤ 255 characters; empty → the §21 phrase."""
    text = "".join(char for char in reason if char.isprintable()).strip()[:MAX_PHRASE]
    return text or DEFAULT_PHRASES.get(status, DEFAULT_PHRASES.get(status // 100 * 100, ""))
