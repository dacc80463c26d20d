"""SIP messages: a start line, ordered header fields, a body (RFC 3261 §7).

Header values stay text until someone asks for their structure (headers.py):
a registration client reads a handful of fields of each response, so parsing
every Via and Contact of every message would be work thrown away.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sipline.sip.headers import split_list

# RFC 3261 §7.3.3 and the IANA registry: compact form → full name.
COMPACT = {
    "i": "Call-ID",
    "m": "Contact",
    "e": "Content-Encoding",
    "l": "Content-Length",
    "c": "Content-Type",
    "f": "From",
    "s": "Subject",
    "k": "Supported",
    "t": "To",
    "v": "Via",
    "o": "Event",
    "u": "Allow-Events",
    "r": "Refer-To",
    "b": "Referred-By",
    "x": "Session-Expires",
    "a": "Accept-Contact",
    "j": "Reject-Contact",
    "d": "Request-Disposition",
    "y": "Identity",
    "n": "Identity-Info",
}
_KNOWN = (
    "Via",
    "From",
    "To",
    "Call-ID",
    "CSeq",
    "Contact",
    "Max-Forwards",
    "Expires",
    "Min-Expires",
    "Retry-After",
    "WWW-Authenticate",
    "Proxy-Authenticate",
    "Authorization",
    "Proxy-Authorization",
    "Route",
    "Record-Route",
    "Path",
    "Supported",
    "Require",
    "Unsupported",
    "Proxy-Require",
    "Allow",
    "User-Agent",
    "Server",
    "Date",
    "Content-Length",
    "Content-Type",
    "Content-Encoding",
    "Flow-Timer",
    "Timestamp",
    "Accept",
    "Subject",
    "Event",
    "Allow-Events",
    "Session-Expires",
    "Warning",
)
# lower-case name or compact letter → the spelling we send
CANONICAL: dict[str, str] = {name.lower(): name for name in _KNOWN} | COMPACT

# RFC 3261 §7.3.1: header fields whose values may be combined with commas. The
# authentication headers are not among them: their values contain commas.
LIST_HEADERS = frozenset(
    name.lower()
    for name in (
        "Via",
        "Contact",
        "Route",
        "Record-Route",
        "Path",
        "Allow",
        "Supported",
        "Require",
        "Unsupported",
        "Proxy-Require",
        "Accept",
        "Accept-Encoding",
        "Accept-Language",
        "Content-Encoding",
        "Allow-Events",
        "In-Reply-To",
        "Warning",
    )
)


def canonical(name: str) -> str:
    """The full, conventionally spelled name (`v` → `Via`, `call-id` → `Call-ID`)."""
    return _CANONICAL_FAST.get(name) or CANONICAL.get(name.lower(), name)


def header_key(name: str) -> str:
    """What header names compare by: the canonical name, lower-cased."""
    return _KEY_FAST.get(name) or CANONICAL.get(name.lower(), name).lower()


# The spellings seen on the wire, answered without lower-casing (a hot path: every header of every
# message). Only known names are here, so a peer cannot grow these tables.
_SPELLINGS = {spelling for name in CANONICAL for spelling in (name, name.upper(), name.title())}
_SPELLINGS |= set(CANONICAL.values())
_CANONICAL_FAST = {spelling: CANONICAL[spelling.lower()] for spelling in _SPELLINGS if spelling.lower() in CANONICAL}
_KEY_FAST = {spelling: name.lower() for spelling, name in _CANONICAL_FAST.items()}
# spelling → (canonical name, key), for the parser
NAMES = {spelling: (name, name.lower()) for spelling, name in _CANONICAL_FAST.items()}


class Headers:
    """Header fields in order; names compare case-insensitively, compact forms expanded."""

    __slots__ = ("fields", "keys", "first")

    def __init__(self, fields: list[tuple[str, str]] | None = None) -> None:
        self.fields: list[tuple[str, str]] = []  # (canonical name, value)
        self.keys: list[str] = []  # header_key() of each field, kept in step with `fields`
        self.first: dict[str, str] = {}  # header_key() → the first field's value (a dozen lookups a message)
        for name, value in fields or ():
            self.add(name, value)

    @classmethod
    def of(cls, fields: list[tuple[str, str]]) -> Headers:
        """Headers from (name, value) pairs whose names are already spelled canonically (our own)."""
        headers = cls()
        headers.fields = fields
        headers.keys = [header_key(name) for name, _ in fields]
        for key, (_, value) in zip(headers.keys, fields, strict=True):
            headers.first.setdefault(key, value)
        return headers

    def add(self, name: str, value: str) -> None:
        name = canonical(name)
        key = header_key(name)
        self.fields.append((name, value))
        self.keys.append(key)
        self.first.setdefault(key, value)

    def get(self, name: str) -> str | None:
        """The first field's value, or None."""
        return self.first.get(header_key(name))

    def get_all(self, name: str) -> list[str]:
        """Every value, comma-separated lists split into their elements (RFC 3261 §7.3.1)."""
        key = header_key(name)
        if key not in self.first:
            return []
        values = [self.fields[index][1] for index, present in enumerate(self.keys) if present == key]
        if key in LIST_HEADERS:
            return [item for value in values for item in split_list(value)]
        return values

    def set(self, name: str, value: str) -> None:
        """Replace every field of this name by one (in the first one's place, else at the end)."""
        key = header_key(name)
        fields, self.fields, self.keys, self.first = self.fields, [], [], {}
        placed = False
        for present, old in fields:
            if header_key(present) != key:
                self.add(present, old)
            elif not placed:
                self.add(name, value)
                placed = True
        if not placed:
            self.add(name, value)

    def remove(self, name: str) -> None:
        key = header_key(name)
        fields, self.fields, self.keys, self.first = self.fields, [], [], {}
        for present, value in fields:
            if header_key(present) != key:
                self.add(present, value)

    def __contains__(self, name: str) -> bool:
        return self.get(name) is not None

    def __iter__(self):
        return iter(self.fields)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Headers) and self.fields == other.fields

    def __repr__(self) -> str:
        return f"Headers({self.fields!r})"


@dataclass(slots=True)
class Request:
    method: str
    uri: str
    headers: Headers = field(default_factory=Headers)
    body: bytes = b""
    wire: bytes = field(default=b"", compare=False, repr=False)  # as received (parse.py); b"" if made here


@dataclass(slots=True)
class Response:
    status: int
    reason: str
    headers: Headers = field(default_factory=Headers)
    body: bytes = b""
    wire: bytes = field(default=b"", compare=False, repr=False)  # as received (parse.py); b"" if made here


Message = Request | Response
