"""Responses a UAS builds for a request (RFC 3261 §8.2.6), sans-IO."""

from __future__ import annotations

from sipline.sip.errors import BadRequest
from sipline.sip.headers import NameAddr, Via
from sipline.sip.message import Headers, Request, Response, canonical

REQUIRED = ("Via", "From", "To", "Call-ID", "CSeq")  # §8.1.1: a request without these cannot be answered


def answerable(request: Request) -> bool:
    return all(request.headers.get(name) for name in REQUIRED)


def response_to(request: Request, status: int, reason: str, *, to_tag: str | None = None,
                source: tuple[str, int] | None = None, headers: list[tuple[str, str]] | None = None) -> Response:
    """Via, From, To, Call-ID and CSeq copied (§8.2.6.2); our To tag added when the request had none.

    `source` is where the request came from: the top Via gets `received`/`rport` (RFC 3581 §4).
    Raises: BadRequest when the top Via or To cannot be parsed.
    """
    vias = request.headers.get_all("Via")
    if source is not None and vias:
        vias[0] = _stamped(vias[0], source)
    to = request.headers.get("To") or ""
    if to_tag is not None and ("tag" not in to.lower() or NameAddr.parse(to).tag is None):
        to = f"{to};tag={to_tag}"
    fields = [("Via", via) for via in vias] + [
        ("From", request.headers.get("From") or ""),
        ("To", to),
        ("Call-ID", request.headers.get("Call-ID") or ""),
        ("CSeq", request.headers.get("CSeq") or ""),
    ]
    return Response(status, reason, Headers.of(fields + [(canonical(name), value) for name, value in headers or ()]))


def _stamped(value: str, source: tuple[str, int]) -> str:
    via = Via.parse(value)
    address, port = source
    if via.host != address or "rport" in via.params:
        via.params["received"] = address
    if "rport" in via.params:
        via.params["rport"] = str(port)
    return str(via)


__all__ = ["BadRequest", "answerable", "response_to"]
