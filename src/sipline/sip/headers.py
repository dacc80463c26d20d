"""Structured header values (RFC 3261 §20, §25.1): lists, parameters, name-addr, Via, CSeq.

Each parser takes one header value (text) and raises BadRequest when it does
not follow the grammar, so a malformed field fails the request that needs it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

from sipline.sip.errors import BadRequest
from sipline.sip.grammar import HOST, PORT

# token = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~")
TOKEN = r"[A-Za-z0-9\-.!%*_+`'~]+"
_TOKEN = re.compile(TOKEN + r"\Z")
# quoted-string = SWS DQUOTE *(qdtext / quoted-pair ) DQUOTE;  quoted-pair = "\" (%x00-09 / %x0B-0C / %x0E-7F)
QUOTED = r'"(?:[^"\\\r\n]|\\[^\r\n])*"'
_PARAM = re.compile(rf"\s*;\s*({TOKEN})(?:\s*=\s*({QUOTED}|[^;,\s\"]*))?")
# via-parm = sent-protocol LWS sent-by;  sent-protocol = "SIP" SLASH "2.0" SLASH transport
_VIA = re.compile(rf"\s*SIP\s*/\s*2\.0\s*/\s*({TOKEN})\s+({HOST})(?:\s*:\s*({PORT}))?\s*", re.IGNORECASE)
# name-addr = [ display-name ] LAQUOT addr-spec RAQUOT;  display-name = *(token LWS) / quoted-string
# Tokens apart by whitespace, and runs of whitespace taken whole: one reading of any text, so a display
# name that never reaches "<" is refused in one pass (`(?:token\s*)*` split a run of letters every way).
_NAME_ADDR = re.compile(rf"\s*+({QUOTED}|(?:{TOKEN}(?:\s++{TOKEN})*+)?)\s*+<([^<>]*)>\s*")
_CSEQ = re.compile(rf"\s*([0-9]{{1,10}})\s+({TOKEN})\s*\Z")
_DELTA = re.compile(r"\s*([0-9]+)")
MAX_DELTA = 2**32 - 1  # RFC 3261 §20.19: "between 0 and (2**32)-1"


def is_token(text: str) -> bool:
    return bool(_TOKEN.match(text))


def unquote(text: str) -> str:
    """quoted-string → its content, quoted-pairs resolved; other text unchanged."""
    if len(text) >= 2 and text[0] == text[-1] == '"':
        return re.sub(r"\\(.)", r"\1", text[1:-1])
    return text


def quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def split_list(value: str) -> list[str]:
    """Split a comma-separated header value, leaving commas inside quotes and <...> alone."""
    if "," not in value:
        return [value.strip()] if value.strip() else []
    if '"' not in value and "<" not in value:
        return [item.strip() for item in value.split(",") if item.strip()]
    items, depth, quoted, escaped, start = [], 0, False, False, 0
    for position, char in enumerate(value):
        if escaped:
            escaped = False
        elif quoted:
            if char == "\\":
                escaped = True
            elif char == '"':
                quoted = False
        elif char == '"':
            quoted = True
        elif char == "<":
            depth += 1
        elif char == ">":
            depth = max(0, depth - 1)
        elif char == "," and depth == 0:
            items.append(value[start:position].strip())
            start = position + 1
    items.append(value[start:].strip())
    return [item for item in items if item]


def parse_params(text: str) -> tuple[dict[str, str | None], str]:
    """Leading `;name[=value]` parameters → ({lower-case name: value}, rest of text).

    Values keep their quotes; a parameter without `=` maps to None.
    """
    params: dict[str, str | None] = {}
    position = 0
    while True:
        match = _PARAM.match(text, position)
        if not match:
            return params, text[position:]
        params[match.group(1).lower()] = match.group(2)
        position = match.end()


def render_params(params: dict[str, str | None]) -> str:
    return "".join(f";{name}" if value is None else f";{name}={value}" for name, value in params.items())


@dataclass(slots=True)
class NameAddr:
    """From, To, Contact, Route: `"Display" <uri>;params` or a bare `uri;params` (RFC 3261 §20.10)."""

    uri: str
    display: str | None = None
    params: dict[str, str | None] = field(default_factory=dict)

    @classmethod
    def parse(cls, value: str) -> NameAddr:
        """Raises: BadRequest for a value that is neither name-addr nor addr-spec."""
        match = _NAME_ADDR.match(value)
        if match:
            display = match.group(1).strip() or None
            uri, rest = match.group(2).strip(), value[match.end() :]
        else:
            # addr-spec form: parameters after the URI belong to the header, not the URI (§20)
            uri, separator, rest = value.strip().partition(";")
            rest = separator + rest
            display = None
            if not uri or any(char in uri for char in ' <>"'):
                raise BadRequest(f"malformed address {value!r}")
        params, leftover = parse_params(rest)
        if leftover.strip():
            raise BadRequest(f"malformed address parameters {value!r}")
        return cls(uri, unquote(display) if display else None, params)

    def __str__(self) -> str:
        display = f"{quote(self.display)} " if self.display else ""
        return f"{display}<{self.uri}>{render_params(self.params)}"

    @property
    def tag(self) -> str | None:
        return self.params.get("tag")


@dataclass(slots=True)
class Via:
    transport: str
    host: str
    port: int | None
    params: dict[str, str | None] = field(default_factory=dict)

    @classmethod
    def parse(cls, value: str) -> Via:
        """One Via element (split_list first). Raises: BadRequest."""
        match = _VIA.match(value)
        if not match:
            raise BadRequest(f"malformed Via {value!r}")
        params, leftover = parse_params(value[match.end() :])
        if leftover.strip():
            raise BadRequest(f"malformed Via parameters {value!r}")
        port = int(match.group(3)) if match.group(3) else None
        if port is not None and not 0 < port < 65536:
            raise BadRequest(f"Via port out of range {value!r}")
        return cls(match.group(1).upper(), match.group(2), port, params)

    def __str__(self) -> str:
        port = f":{self.port}" if self.port else ""
        return f"SIP/2.0/{self.transport} {self.host}{port}{render_params(self.params)}"

    @property
    def branch(self) -> str | None:
        return self.params.get("branch")


@lru_cache(maxsize=4096)  # every request is checked, and a PBX sends the same few values again and again
def parse_cseq(value: str) -> tuple[int, str]:
    """`CSeq: 4711 REGISTER` → (4711, "REGISTER"); the number is below 2**31 (§8.1.1.5).

    Raises: BadRequest.
    """
    match = _CSEQ.match(value)
    if not match or int(match.group(1)) >= 2**31:
        raise BadRequest(f"malformed CSeq {value!r}")
    return int(match.group(1)), match.group(2)


def parse_delta_seconds(value: str) -> int:
    """Leading delta-seconds of Expires, Min-Expires, Retry-After (`30 (busy);duration=10` → 30);
    a larger value counts as MAX_DELTA, as an HTTP cache counts one (RFC 9111 §1.2.2).

    Raises: BadRequest.
    """
    match = _DELTA.match(value)
    if not match:
        raise BadRequest(f"not a number of seconds: {value!r}")
    digits = match.group(1).lstrip("0")
    return MAX_DELTA if len(digits) > 10 else min(int(digits or "0"), MAX_DELTA)
