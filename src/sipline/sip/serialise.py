"""SIP messages → bytes (RFC 3261 §7). Content-Length is always written, from the body."""

from __future__ import annotations

from sipline.sip.errors import SipError
from sipline.sip.message import Message, Request


class HeaderInjection(SipError):
    """A header value holds CR or LF: it would end the header and start another."""


def serialise(message: Message) -> bytes:
    """Raises: HeaderInjection for a value with CR or LF (the REST layer refuses them before)."""
    if isinstance(message, Request):
        lines = [f"{message.method} {message.uri} SIP/2.0"]
    else:
        lines = [f"SIP/2.0 {message.status} {message.reason}"]
    lines += [f"{name}: {value}" for name, value in message.headers.fields if name != "Content-Length"]
    for name, value in message.headers.fields:
        if "\r" in value or "\n" in value:
            raise HeaderInjection(f"CR/LF in {name}")
    lines.append(f"Content-Length: {len(message.body)}")
    lines.append("\r\n")
    return "\r\n".join(lines).encode() + message.body
