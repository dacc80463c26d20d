"""Bytes → SIP messages (RFC 3261 §7), for datagrams and for streams.

A datagram is one message. On a stream (TCP, TLS) messages are framed by
Content-Length (§18.3), may be preceded by CRLFs (§7.5), and a CRLFCRLF between
messages is a keep-alive ping (RFC 5626 §3.5.1). Limits keep a hostile peer
from making us buffer or walk without end: a message is at most MAX_MESSAGE
bytes and may repeat one header at most MAX_SAME_HEADER times.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from sipline.sip.errors import MessageTooLarge, ParseError
from sipline.sip.grammar import is_digits
from sipline.sip.headers import is_token
from sipline.sip.message import NAMES, Headers, Message, Request, Response, canonical, header_key

MAX_MESSAGE = 65536  # bytes; RFC 3261 §18.1.1 sizes UDP at 65535 with headers
MAX_SAME_HEADER = 100  # repeats of one header name (a REGISTER needs a handful of Vias)
_STATUS_LINE = re.compile(r"SIP/2\.0 ([1-6][0-9][0-9]) ?(.*)\Z", re.IGNORECASE)
_REQUEST_LINE = re.compile(r"([A-Za-z0-9\-.!%*_+`'~]+) (\S+) SIP/2\.0\Z", re.IGNORECASE)
# Request lines as peers send them, read without the regular expression (every request has one)
_METHODS = frozenset(
    {
        "REGISTER",
        "OPTIONS",
        "INVITE",
        "ACK",
        "BYE",
        "CANCEL",
        "SUBSCRIBE",
        "NOTIFY",
        "MESSAGE",
        "INFO",
        "PRACK",
        "UPDATE",
        "REFER",
        "PUBLISH",
    }
)


def parse_message(data: bytes) -> Message:
    """One whole message, as a datagram carries it.

    Raises:
        ParseError: not a SIP message, or a Content-Length the body does not match.
        MessageTooLarge: over MAX_MESSAGE bytes.
    """
    if len(data) > MAX_MESSAGE:
        raise MessageTooLarge(f"{len(data)} bytes")
    end = data.find(b"\r\n\r\n")
    if end < 0:
        raise ParseError("no end of headers")
    message, length = _parse_head(data[:end])
    rest = data[end + 4 :]
    if length is None:
        message.body = rest  # §18.3: on UDP the body runs to the end of the datagram
    elif length > len(rest):
        raise ParseError("body shorter than Content-Length")
    else:
        message.body = rest[:length]
    message.wire = data  # docs/behaviour.md#line-trace: the bytes as they came (a reference, no copy)
    return message


def _parse_head(head: bytes) -> tuple[Message, int | None]:
    """The message without its body, and its Content-Length if it has one."""
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        raise ParseError("headers are not UTF-8") from None
    lines = text.split("\r\n")
    message = _start_line(lines[0])
    fields, keys, first = message.headers.fields, message.headers.keys, message.headers.first
    header_lines = _unfold(lines[1:]) if "\r\n " in text or "\r\n\t" in text else lines[1:]
    add_field, add_key, names = fields.append, keys.append, NAMES  # the loop runs for every header line
    for line in header_lines:
        name, colon, value = line.partition(":")
        known = names.get(name)
        if known is None or not colon:
            known = _unknown_name(name, colon, line)
        value = value.strip(" \t")
        add_field((known[0], value))
        key = known[1]
        add_key(key)
        if key not in first:
            first[key] = value
    if len(keys) > MAX_SAME_HEADER:  # fewer lines cannot repeat one name too often
        key, count = Counter(keys).most_common(1)[0]
        if count > MAX_SAME_HEADER:
            raise MessageTooLarge(f"more than {MAX_SAME_HEADER} {key} headers")
    return message, _content_length(first.get("content-length"))


def _unknown_name(name: str, colon: str, line: str) -> tuple[str, str]:
    """(canonical name, key) of a header name that is not in NAMES as spelled; raises ParseError."""
    if not colon:
        raise ParseError(f"malformed header line {line[:40]!r}")
    name = name.rstrip(" \t")
    known = NAMES.get(name)
    if known is None:
        if not is_token(name):
            raise ParseError(f"malformed header line {line[:40]!r}")
        known = (canonical(name), header_key(name))
    return known


def _start_line(line: str) -> Message:
    method, _, rest = line.partition(" ")
    if method in _METHODS:
        uri, _, version = rest.partition(" ")
        # what _REQUEST_LINE accepts, in its plainest spelling; anything else is left to it
        if version == "SIP/2.0" and uri and uri.isascii() and uri.isprintable():
            return Request(method, uri, Headers())
    if line[:4].upper() == "SIP/":
        match = _STATUS_LINE.match(line)
        if not match:
            raise ParseError(f"malformed status line {line[:40]!r}")
        return Response(int(match.group(1)), match.group(2), Headers())
    match = _REQUEST_LINE.match(line)
    if not match:
        raise ParseError(f"malformed request line {line[:40]!r}")
    return Request(match.group(1).upper(), match.group(2), Headers())


def _unfold(lines: list[str]) -> list[str]:
    """§7.3.1: a line that starts with whitespace continues the previous header."""
    unfolded: list[str] = []
    for line in lines:
        if line[:1] in (" ", "\t"):
            if not unfolded:
                raise ParseError("continuation line without a header")
            unfolded[-1] += " " + line.strip(" \t")
        else:
            unfolded.append(line)
    return unfolded


def _content_length(value: str | None) -> int | None:
    if value is None:
        return None
    if not is_digits(value, 9):
        raise ParseError(f"malformed Content-Length {value[:20]!r}")
    return int(value)


@dataclass(frozen=True)
class KeepAlive:
    """A CRLFCRLF ping between messages on a stream (RFC 5626 §3.5.1): answer with CRLF."""


class StreamParser:
    """Frames messages out of a byte stream; feed() returns messages and keep-alives as they complete.

    After a ParseError the stream cannot be re-synchronised: the caller closes the connection.
    """

    def __init__(self) -> None:
        self._buffer = b""
        self._scanned = 0  # bytes of the buffer known to hold no end of headers

    def feed(self, data: bytes) -> list[Message | KeepAlive]:
        """Raises: ParseError or MessageTooLarge; the connection must then be closed."""
        self._buffer += data
        events: list[Message | KeepAlive] = []
        while (event := self._next()) is not None:
            events.append(event)
        return events

    def _next(self) -> Message | KeepAlive | None:
        while not self._scanned:
            buffer = self._buffer
            if buffer.startswith(b"\r\n\r\n"):
                self._buffer = buffer[4:]
                return KeepAlive()
            if b"\r\n\r\n".startswith(buffer):
                return None  # nothing yet, or what may still become a ping
            if not buffer.startswith(b"\r\n"):
                break
            self._buffer = buffer[2:]  # a lone CRLF before a start line (§7.5)
        buffer = self._buffer
        end = buffer.find(b"\r\n\r\n", max(0, self._scanned - 3))
        if end < 0:
            self._scanned = len(buffer)
            if len(buffer) > MAX_MESSAGE:
                raise MessageTooLarge("headers never end")
            return None
        self._scanned = end  # headers are complete; the body may not be
        message, length = _parse_head(buffer[:end])
        if length is None:
            raise ParseError("Content-Length is required on a stream (RFC 3261 §18.3)")
        total = end + 4 + length
        if total > MAX_MESSAGE:
            raise MessageTooLarge(f"{total} bytes")
        if len(buffer) < total:
            return None
        message.body = buffer[end + 4 : total]
        message.wire = buffer[:total]  # docs/behaviour.md#line-trace (no copy when the buffer is one message)
        self._buffer = buffer[total:]
        self._scanned = 0
        return message
