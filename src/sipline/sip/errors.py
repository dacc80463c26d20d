"""SIP errors: each carries the status a server would answer with (RFC 3261 §21).

    SipError                     500 Server Internal Error
    ├── BadRequest               400 malformed message or header value
    │   └── ParseError           the bytes are not a SIP message
    │       └── MessageTooLarge  513 over the size limits
    ├── IntervalTooBrief         423 with the Min-Expires to send
    └── TransactionDoesNotExist  481

Only sip/transports/ turns one into a response on the wire.
"""


class SipError(Exception):
    status = 500
    reason = "Server Internal Error"


class BadRequest(SipError):
    status, reason = 400, "Bad Request"


class ParseError(BadRequest):
    pass


class MessageTooLarge(ParseError):
    status, reason = 513, "Message Too Large"


class IntervalTooBrief(SipError):
    status, reason = 423, "Interval Too Brief"

    def __init__(self, min_expires: int) -> None:
        super().__init__(f"expiry below {min_expires}")
        self.min_expires = min_expires


class TransactionDoesNotExist(SipError):
    status, reason = 481, "Call/Transaction Does Not Exist"
