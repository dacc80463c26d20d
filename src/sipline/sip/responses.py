"""Responses a UAS sends to a request (RFC 3261 §8.2.6), sans-IO, straight to bytes.

A registrar answers thousands of REGISTERs a second: the answer is written in one
pass from the request's fields, without building a Response to serialise.
"""

from __future__ import annotations

import re

from sipline.sip.errors import BadRequest, SipError
from sipline.sip.grammar import HOST
from sipline.sip.headers import TOKEN, NameAddr, Via, split_list
from sipline.sip.message import Request, canonical
from sipline.sip.serialise import HeaderInjection

REQUIRED = ("via", "from", "to", "call-id", "cseq")  # §8.1.1: a request without these cannot be answered


def answerable(request: Request) -> bool:
    first = request.headers.first
    return all(first.get(key) for key in REQUIRED)


def encode_response(
    request: Request,
    status: int,
    reason: str,
    *,
    to_tag: str | None = None,
    source: tuple[str, int] | None = None,
    headers: list[tuple[str, str]] | None = None,
) -> bytes:
    """Via, From, To, Call-ID and CSeq copied (§8.2.6.2); our To tag added when the request had none;
    then `headers`, and an empty body.

    `source` is where the request came from: the top Via gets `received`/`rport` (RFC 3581 §4).
    Raises:
        BadRequest: the top Via or To cannot be parsed.
        HeaderInjection: a value holds CR or LF.
    """
    lines = [f"SIP/2.0 {status} {reason}"]
    for name, value in request.headers.fields:
        if name == "Via":
            if source is not None and len(lines) == 1:
                value = _stamped(value, source)
            lines.append("Via: " + value)
    first = request.headers.first
    to = first.get("to") or ""
    if to_tag is not None and ("tag" not in to.lower() or NameAddr.parse(to).tag is None):
        to = f"{to};tag={to_tag}"
    lines += (
        "From: " + (first.get("from") or ""),
        "To: " + to,
        "Call-ID: " + (first.get("call-id") or ""),
        "CSeq: " + (first.get("cseq") or ""),
    )
    lines += [f"{canonical(name)}: {value}" for name, value in headers or ()]
    lines.append("Content-Length: 0\r\n\r\n")
    text = "\r\n".join(lines)
    breaks = len(lines) + 1  # one CRLF after each line, and the blank line
    if text.count("\n") != breaks or text.count("\r") != breaks:
        raise HeaderInjection("CR/LF in a header value")
    return text.encode()


def encode_error(
    request: Request,
    error: SipError,
    *,
    to_tag: str | None = None,
    source: tuple[str, int] | None = None,
    headers: list[tuple[str, str]] | None = None,
) -> bytes:
    """The one rendering of a SipError: its status and reason, its own header fields, then `headers`.

    Raises: as `encode_response`.
    """
    return encode_response(
        request,
        error.status,
        error.reason,
        to_tag=to_tag,
        source=source,
        headers=error.header_fields() + (headers or []),
    )


def _stamped(value: str, source: tuple[str, int]) -> str:
    """The Via field with its first element stamped (a field may hold several, comma-separated)."""
    elements = split_list(value) if "," in value else [value]
    if not elements:
        raise BadRequest("empty Via")
    elements[0] = _stamp_plain(elements[0], source) or _stamp(elements[0], source)
    return ", ".join(elements)


def _stamps(host: str, rport: bool, source: tuple[str, int]) -> tuple[str | None, str | None]:
    """RFC 3581 §4: the `received` and `rport` values to set (None: leave as is) — `received` when
    the sent-by host is not the source address or `rport` was asked for; `rport` gets the source port."""
    address, port = source
    return (address if host != address or rport else None), (str(port) if rport else None)


def _stamp(element: str, source: tuple[str, int]) -> str:
    via = Via.parse(element)
    received, rport = _stamps(via.host, "rport" in via.params, source)
    if received is not None:
        via.params["received"] = received
    if rport is not None:
        via.params["rport"] = rport
    return str(via)


# A Via element as UAs usually write it: already in the spelling str(Via) gives (upper-case protocol,
# no spaces, a plain port, lower-case parameter names, values without quotes). Stamping it needs no parse.
# The host is matched atomically, as Via.parse takes it: the first reading of HOST, never a longer one.
_PLAIN_VIA = re.compile(
    rf"SIP/2\.0/[A-Z]+ ((?>{HOST}))(?::([1-9][0-9]{{0,4}}))?"
    rf"((?:;{TOKEN}(?:=[^;,\s\"]*)?)*)\Z"
)


def _stamp_plain(element: str, source: tuple[str, int]) -> str | None:
    """What `_stamp` gives, for an element in the plain spelling; None for any other."""
    plain = _PLAIN_VIA.match(element)
    if plain is None or (plain.group(2) and int(plain.group(2)) > 65535):
        return None
    params = plain.group(3).split(";")[1:]
    names = [param.partition("=")[0] for param in params]
    if len(set(names)) != len(names) or any(name != name.lower() for name in names):
        return None  # a repeated name (Via.parse keeps the last value), or one str(Via) writes in lower case
    received, rport = _stamps(plain.group(1), "rport" in names, source)
    if received is not None:
        if "received" in names:
            params[names.index("received")] = f"received={received}"
        else:
            params.append(f"received={received}")
    if rport is not None:
        params[names.index("rport")] = f"rport={rport}"
    head = element[: plain.start(3)]
    return head + "".join(";" + param for param in params)


__all__ = ["BadRequest", "answerable", "encode_error", "encode_response"]
