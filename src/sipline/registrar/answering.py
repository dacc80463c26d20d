"""Who answers a request that reaches sipline, sans-IO: a function from request to response.

REGISTER goes to the registrar (service.py). OPTIONS is answered 200 (peers ping
with it), every other method 405; a CSeq that is malformed or names another method
is 400, and nothing else is done with the request (RFC 3261 §8.2). Each of these
answers lists Allow. ACK gets no answer (§17.2.1), and a request that cannot be
answered at all (no Via, From, To, Call-ID or CSeq, §8.1.1) is dropped.
"""

from __future__ import annotations

from enum import Enum

from sipline.sip.errors import BadRequest, MethodNotAllowed, SipError
from sipline.sip.headers import parse_cseq
from sipline.sip.message import Request
from sipline.sip.responses import answerable, encode_error, encode_response

ALLOW = "REGISTER, OPTIONS"
ALLOWED = ("Allow", ALLOW)  # §20.5: sent in every answer from here, not only where a 405 needs it
TO_TAG = "sipline"  # §8.2.6.2: our To tag; no dialog ever follows these answers


class Handling(Enum):
    """What becomes of a request that gets no answer from here."""

    REGISTRAR = "registrar"  # a REGISTER, the registrar's to answer
    IGNORED = "ignored"  # an ACK
    DROPPED = "dropped"  # cannot be answered: counted as malformed


def answer(request: Request, source: tuple[str, int]) -> bytes | Handling:
    """The response to send back to `source` (address, port), or what else to do with the request."""
    if request.method == "ACK":
        return Handling.IGNORED  # §17.2.1: an ACK gets no response
    if not answerable(request):
        return Handling.DROPPED
    refusal: SipError | None = None
    try:
        _check(request)
    except SipError as error:
        refusal = error
    if refusal is None and request.method == "REGISTER":
        return Handling.REGISTRAR
    try:
        return _encoded(request, refusal, source)
    except SipError:  # a top Via or To we cannot parse, or CR/LF in a value
        return Handling.DROPPED


def _check(request: Request) -> None:
    """Raises: BadRequest for a CSeq that is malformed or not the request's method,
    MethodNotAllowed for a method other than REGISTER and OPTIONS."""
    _, method = parse_cseq(request.headers.get("CSeq") or "")
    if method != request.method:
        raise BadRequest("the CSeq method is not the request's")
    if request.method not in ("REGISTER", "OPTIONS"):
        raise MethodNotAllowed(ALLOW)


def _encoded(request: Request, refusal: SipError | None, source: tuple[str, int]) -> bytes:
    """The 200 to OPTIONS (§11.2) or the refusal, each listing Allow (the 405 as a field of its own)."""
    if refusal is None:
        return encode_response(request, 200, "OK", to_tag=TO_TAG, source=source, headers=[ALLOWED])
    allow = [] if isinstance(refusal, MethodNotAllowed) else [ALLOWED]
    return encode_error(request, refusal, to_tag=TO_TAG, source=source, headers=allow)
