"""The success envelope and its `time` block (docs/behaviour.md#rest-envelope), the response headers, and a body
rendered as the response of its transport (docs/behaviour.md#rest-xml)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from xml.sax.saxutils import escape, quoteattr

import orjson
from starlette.responses import Response

from sipline.telephony import php_values

HEADERS = {
    "access-control-allow-origin": "*",
    "access-control-allow-headers": "origin, content-type, accept",
    "x-content-type-options": "nosniff",
}
JSON_TYPE = "application/json; charset=utf-8"
XML_TYPE = "text/xml; charset=utf-8"
_XML_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*\Z")
# XML 1.0 §2.2 Char: no control character but tab, LF and CR, not even as a character reference;
# a value holding one (a filter key echoed in an error) gets U+FFFD there, so the document stays well-formed.
_NOT_XML_CHAR = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


@dataclass(frozen=True)
class ListResult:
    """A page of a list method; `total` and `next` go to the top level of the envelope."""

    items: Sequence[object]
    total: int
    next: int | None


def time_block(
    start: float, finish: float, processing: float, operating: tuple[float, int] | None = None
) -> dict[str, object]:
    """`operating`: (seconds, reset at) of the operating-time limit (docs/behaviour.md#rest-operating-limit), when it is on."""
    block: dict[str, object] = {
        "start": start,
        "finish": finish,
        "duration": finish - start,
        "processing": processing,
        "date_start": local_iso(start),
        "date_finish": local_iso(finish),
    }
    if operating is not None:
        block["operating_reset_at"], block["operating"] = operating[1], operating[0]
    return block


def success_body(result: object, time: dict[str, object]) -> dict[str, object]:
    if isinstance(result, ListResult):
        body: dict[str, object] = {"result": result.items, "total": result.total}
        if result.next is not None:
            body["next"] = result.next
        body["time"] = time
        return body
    return {"result": result, "time": time}


def json_response(body: Mapping[str, object], status: int = 200) -> Response:
    return Response(render_json(body), status_code=status, headers=HEADERS, media_type=JSON_TYPE)


def respond(body: Mapping[str, object], status: int, transport: str) -> Response:
    if transport == "xml":
        return Response(render_xml(body), status_code=status, headers=HEADERS, media_type=XML_TYPE)
    return json_response(body, status)


def render_json(body: Mapping[str, object]) -> bytes:
    return orjson.dumps(body)


def render_xml(body: Mapping[str, object]) -> bytes:
    """The `.xml` transport (docs/behaviour.md#rest-xml): `<response>`, list entries as `<item>`."""
    plain = orjson.loads(orjson.dumps(body))  # pre-rendered JSON fragments become plain values
    return ('<?xml version="1.0" encoding="utf-8"?>' + _xml_element("response", plain)).encode()


def _xml_element(name: str, value: object) -> str:
    if isinstance(value, dict):
        inner = "".join(_xml_child(key, item) for key, item in value.items())
    elif isinstance(value, list):
        inner = "".join(_xml_element("item", item) for item in value)
    else:
        inner = "" if value is None else escape(_xml_chars(php_values.strval(value)))  # type: ignore[arg-type]
    return f"<{name}>{inner}</{name}>"


def _xml_child(key: str, value: object) -> str:
    if _XML_NAME.match(key):
        return _xml_element(key, value)
    return _xml_element("item", value).replace("<item>", f"<item key={quoteattr(_xml_chars(key))}>", 1)


def _xml_chars(text: str) -> str:
    return _NOT_XML_CHAR.sub("\ufffd", text) if not text.isprintable() else text


_iso_memo: tuple[int, str] = (-1, "")


def local_iso(moment: float) -> str:
    """`2026-03-16T12:42:08+02:00` in the server's time zone (memoised per second: this is per request)."""
    global _iso_memo
    second = int(moment)
    if _iso_memo[0] != second:
        _iso_memo = (second, datetime.fromtimestamp(second).astimezone().isoformat(timespec="seconds"))
    return _iso_memo[1]


def local_iso_ms(moment: float) -> str:
    """`2026-03-16T12:42:08.250+02:00`: local_iso with milliseconds (a SIP ladder's retransmissions are 0.5 s apart)."""
    return datetime.fromtimestamp(moment).astimezone().isoformat(timespec="milliseconds")


def local_datetime(moment: float) -> str:
    """`2026-03-12 09:10:51`: LAST_UPDATED's form (server time zone, no zone marker)."""
    return datetime.fromtimestamp(moment).strftime("%Y-%m-%d %H:%M:%S")
