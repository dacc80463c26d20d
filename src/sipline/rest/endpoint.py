"""The one REST route: URL → method → parameters → caller → scope → handler → envelope.

Lookup order is Bitrix24's (rest-protocol.md §1): an unknown method is 404 before
any authentication; then credentials, scope, the method's precondition and the
method itself. Every outcome is JSON with the spec's status; nothing redirects.
"""

from __future__ import annotations

import logging
import time

from starlette.datastructures import Headers
from starlette.formparsers import MultiPartException, MultiPartParser, parse_options_header
from starlette.requests import Request
from starlette.responses import Response

from sipline.rest import params as decode
from sipline.rest.auth import authenticate
from sipline.rest.envelope import (
    HEADERS,
    JSON_TYPE,
    XML_TYPE,
    render_json,
    render_xml,
    success_body,
    time_block,
)
from sipline.rest.errors import (
    ArgumentError,
    InsufficientScope,
    MethodNotFound,
    RequestTooLarge,
    RestError,
    error_body,
    to_rest_error,
)
from sipline.rest.params import Params
from sipline.rest.registry import METHODS, Method
from sipline.rest.routes import Route, masked, parse_rest_path
from sipline.services import Services
from sipline.telephony.errors import TelephonyError

log = logging.getLogger("sipline.rest")

MAX_BODY = 1 << 20  # 1 MiB: far above any voximplant call, small enough to refuse early
_BODY_METHODS = ("POST",)  # Bitrix24 reads a body only on POST [S]


def json_response(body: dict[str, object], status: int = 200) -> Response:
    return Response(render_json(body), status_code=status, headers=HEADERS, media_type=JSON_TYPE)


def respond(body: dict[str, object], status: int, transport: str) -> Response:
    if transport == "xml":
        return Response(render_xml(body), status_code=status, headers=HEADERS, media_type=XML_TYPE)
    return json_response(body, status)


class RestApi:
    def __init__(self, services: Services, methods: dict[str, Method] = METHODS) -> None:
        self.services = services
        self.methods = methods

    async def __call__(self, request: Request) -> Response:
        start = time.time()
        transport = "json"
        try:
            route = parse_rest_path(request.scope["path"])
            transport = route.transport
            body = await self._call(request, route, start)
            return respond(body, 200, transport)
        except RestError as error:
            return respond(error_body(error), error.status, transport)
        except Exception:
            log.exception("unexpected error in %s %s", request.method, masked(request.scope["path"]))
            return respond(error_body(RestError()), 500, transport)

    async def _call(self, request: Request, route: Route, start: float) -> dict[str, object]:
        method = self.methods.get(route.method)
        if method is None:
            raise MethodNotFound()
        params, reserved = await read_params(request)
        caller = await authenticate(
            route, reserved, request.headers.get("authorization"), self.services.accounts, start
        )
        if method.scope is not None and method.scope not in caller.scopes:
            raise InsufficientScope()
        began = time.perf_counter()
        try:
            if method.precondition is not None:
                method.precondition(caller)
            result = await method.handler(params, caller, self.services)
        except TelephonyError as error:
            raise to_rest_error(error, method.errors) from None
        processing = time.perf_counter() - began
        return success_body(result, time_block(start, time.time(), processing))


async def read_params(request: Request) -> tuple[Params, dict[str, object]]:
    """Query string overlaid by the body.

    Raises: ArgumentError for a malformed body, RequestTooLarge past MAX_BODY.
    """
    query = decode.decode_query(request.scope["query_string"])
    body: dict[str, object] = {}
    if request.method in _BODY_METHODS:
        raw = await _read_body(request)
        kind = request.headers.get("content-type", "").partition(";")[0].strip().lower()
        if kind == "application/json":
            body = decode.decode_json_body(raw)
        elif kind == "multipart/form-data":
            body = await _multipart(request.headers, raw)
        elif raw:
            body = decode.decode_query(raw)
    return decode.build(query, body)


async def _read_body(request: Request) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY:
        raise RequestTooLarge(f"Request body exceeds {MAX_BODY} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise RequestTooLarge(f"Request body exceeds {MAX_BODY} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def _multipart(headers: Headers, raw: bytes) -> dict[str, object]:
    async def stream():
        yield raw

    boundary = parse_options_header(headers["content-type"])[1].get(b"boundary", b"")
    if not boundary or b"--" + boundary + b"--" not in raw:  # RFC 2046 §5.1.1: the close delimiter is required
        raise ArgumentError("Invalid multipart body: no closing boundary")
    try:
        form = await MultiPartParser(headers, stream()).parse()
    except MultiPartException as exc:
        raise ArgumentError(f"Invalid multipart body: {exc.message}") from None
    # Files are not parameters of any method here; PHP would put them in $_FILES.
    fields = [(name, value) for name, value in form.multi_items() if isinstance(value, str)]
    return decode.decode_pairs(fields)
