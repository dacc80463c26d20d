"""SIP errors: each carries the status a server would answer with (RFC 3261 §21), and the
header fields that answer must hold.

    SipError                     500 Server Internal Error
    ├── BadRequest               400 malformed message or header value
    │   └── ParseError           the bytes are not a SIP message
    │       └── MessageTooLarge  513 over the size limits
    ├── Unauthorized             401 with one WWW-Authenticate per challenge
    ├── Forbidden                403
    ├── NotFound                 404
    ├── MethodNotAllowed         405 with Allow
    ├── BadExtension             420 with Unsupported
    └── IntervalTooBrief         423 with Min-Expires

Only `sip.responses.encode_error` turns one into a response on the wire.
"""

from __future__ import annotations

Fields = list[tuple[str, str]]


class SipError(Exception):
    status = 500
    reason = "Server Internal Error"

    def header_fields(self) -> Fields:
        """What the response carries besides Via, From, To, Call-ID, CSeq and Content-Length."""
        return []


class BadRequest(SipError):
    status, reason = 400, "Bad Request"


class ParseError(BadRequest):
    pass


class MessageTooLarge(ParseError):
    status, reason = 513, "Message Too Large"


class Unauthorized(SipError):
    """§22.1: a registrar's challenge, one WWW-Authenticate value per offered algorithm."""

    status, reason = 401, "Unauthorized"

    def __init__(self, challenges: list[str]) -> None:
        super().__init__("credentials needed")
        self.challenges = challenges

    def header_fields(self) -> Fields:
        return [("WWW-Authenticate", challenge) for challenge in self.challenges]


class Forbidden(SipError):
    status, reason = 403, "Forbidden"


class NotFound(SipError):
    status, reason = 404, "Not Found"


class MethodNotAllowed(SipError):
    status, reason = 405, "Method Not Allowed"

    def __init__(self, allow: str) -> None:
        super().__init__("method not allowed")
        self.allow = allow

    def header_fields(self) -> Fields:
        return [("Allow", self.allow)]  # §21.4.6: a 405 MUST list the methods we do take


class BadExtension(SipError):
    status, reason = 420, "Bad Extension"

    def __init__(self, unsupported: list[str]) -> None:
        super().__init__("unsupported " + ", ".join(unsupported))
        self.unsupported = unsupported

    def header_fields(self) -> Fields:
        return [("Unsupported", ", ".join(self.unsupported))]  # §8.2.2.3


class IntervalTooBrief(SipError):
    status, reason = 423, "Interval Too Brief"

    def __init__(self, min_expires: int) -> None:
        super().__init__(f"expiry below {min_expires}")
        self.min_expires = min_expires

    def header_fields(self) -> Fields:
        return [("Min-Expires", str(self.min_expires))]  # §10.3 step 7
