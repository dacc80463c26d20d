"""The one REST route: Host → portal → rate → URL → method → parameters → caller → handler → envelope.

Lookup order is Bitrix24's (docs/behaviour.md#rest-urls, docs/behaviour.md#rest-rate-limit): the request-rate limit first,
then an unknown method is 404 before any authentication; then credentials and
scope, the operating-time limit, the method's precondition and the method itself.
`batch` runs its commands through the same steps with the outer call's
credentials. Every outcome is JSON (or XML) with the spec's status; nothing redirects.
`wire_error` is the one mapping of what else a request can end in (the store down, an
OAuth refusal, a bug) to a RestError, for every HTTP answer (docs/behaviour.md#rest-errors).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import orjson
from starlette.datastructures import Headers
from starlette.formparsers import MultiPartException, MultiPartParser, parse_options_header
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from sipline.accounts.oauth import OAuthRefusal
from sipline.events.errors import EventError
from sipline.rest import params as decode
from sipline.rest.auth import authenticate
from sipline.rest.batch import SubFailure, SubSuccess, run_batch
from sipline.rest.envelope import ListResult, respond, success_body, time_block
from sipline.rest.errors import (
    ArgumentError,
    DatabaseUnavailable,
    InsufficientScope,
    MethodNotFound,
    OperationTimeLimit,
    PortalDeleted,
    QueryLimitExceeded,
    RequestTooLarge,
    RestError,
    error_response,
    event_rest_error,
    oauth_rest_error,
    to_rest_error,
)
from sipline.rest.limits import Rate
from sipline.rest.params import Params
from sipline.rest.registry import METHODS, Method
from sipline.rest.routes import Route, masked, parse_rest_path
from sipline.rest.shared_limits import Limits, LocalLimits
from sipline.sip.grammar import is_digits
from sipline.store.database import StoreUnavailable
from sipline.store.records import Portal
from sipline.telephony.caller import Caller
from sipline.telephony.errors import TelephonyError
from sipline.telephony.filter import TermBudget
from sipline.telephony.services import Services

log = logging.getLogger("sipline.rest")

MAX_BODY = 1 << 20  # 1 MiB: far above any voximplant call, small enough to refuse early
_BODY_METHODS = ("POST",)  # Bitrix24 reads a body only on POST [S]


def wire_error(error: Exception, path: str) -> RestError:
    """The RestError an HTTP answer gives for `error`, raised while answering `path`: the one place the
    store being down becomes DatabaseUnavailable (one warning line) and a bug a 500 (logged with its
    traceback). Paths are logged masked: a webhook's code is a credential."""
    if isinstance(error, RestError):
        return error
    if isinstance(error, OAuthRefusal):
        return oauth_rest_error(error)
    if isinstance(error, StoreUnavailable):
        log.warning("database unavailable for %s: %s", masked(path), error)
        return DatabaseUnavailable()
    log.error("unexpected error in %s", masked(path), exc_info=error)
    return RestError()


@dataclass(frozen=True)
class RestLimits:
    """docs/behaviour.md#rest-rate-limit and docs/behaviour.md#rest-operating-limit as configured: None turns a limit off."""

    rate: Rate | None = Rate(burst=50, drain=2)
    operating_limit: float | None = 480.0


class RestApi:
    def __init__(
        self,
        services: Services,
        *,
        portal_base: Callable[[Portal], str],
        methods: dict[str, Method] = METHODS,
        limits: RestLimits = RestLimits(),
        counters: Limits | None = None,
    ) -> None:
        """`counters` keep the buckets and baskets: this process's own, or Redis's (shared_limits.py);
        `portal_base`: where a portal is reached (Urls.portal_base), for methods that link to it."""
        self.services = services
        self.portal_base = portal_base
        self.methods = methods
        self.limits = limits
        self.counters = counters or LocalLimits(limits.operating_limit)

    async def __call__(self, request: Request) -> Response:
        start = time.time()
        path = request.scope["path"]
        transport = "xml" if path.rstrip("/").lower().endswith(".xml") else "json"
        try:
            portal = await self.services.accounts.portal_for_host(request.headers.get("host"))
            if not portal.active:
                raise PortalDeleted()
            await self._limit_rate(portal, request, start)
            body = await self._call(request, parse_rest_path(path), portal, start)
            return respond(body, 200, transport)
        except Exception as error:  # every outcome is an answer of the wire's (docs/behaviour.md#rest-errors)
            return error_response(wire_error(error, path), transport)

    async def _call(self, request: Request, route: Route, portal: Portal, start: float) -> dict[str, object]:
        method = self.methods.get(route.method)
        if method is None:
            raise MethodNotFound()
        params, reserved = await read_params(request)
        caller = await authenticate(
            route, reserved, request.headers.get("authorization"), self.services, portal, method.scope, start
        )
        if route.method == "batch":  # docs/behaviour.md#rest-batch: the outer call is not counted for operating time
            began = time.perf_counter()
            values = params.upper().values
            budget = TermBudget(self.services.lines.filter_limits.batch_terms)
            caller = replace(caller, filter_budget=budget, portal_base=self.portal_base(portal))
            sections = await run_batch(
                values.get("CMD"), values.get("HALT"), lambda name, sub: self._sub_call(name, sub, caller)
            )
            return success_body(sections, time_block(start, time.time(), time.perf_counter() - began))
        if method.links:
            caller = replace(caller, portal_base=self.portal_base(portal))
        result, block = await self._invoke(route.method, method, params, caller, start)
        return success_body(result, block)

    async def _invoke(
        self, name: str, method: Method, params: Params, caller: Caller, start: float
    ) -> tuple[object, dict[str, object]]:
        """Run one method under the operating-time limit (docs/behaviour.md#rest-operating-limit); its result and time block."""
        key = f"{caller.portal_id}|{caller.app_id or f'webhook {caller.webhook_id}'}|{name}"
        if await self.counters.blocked(key, start):
            raise OperationTimeLimit()
        began = time.perf_counter()
        try:
            if method.precondition is not None:
                method.precondition(caller)
            result = await method.handler(params, caller, self.services)
        except TelephonyError as error:
            raise to_rest_error(error, method.errors) from None
        except EventError as error:
            raise event_rest_error(error) from None
        finally:
            processing = time.perf_counter() - began
            used = await self.counters.record(key, processing, start)
        finish = time.time()
        return result, time_block(start, finish, processing, (used.seconds, used.reset_at) if used else None)

    async def _sub_call(self, name: str, values: dict[str, object], caller: Caller) -> SubSuccess | SubFailure:
        """One command of a batch, run like a call of its own with the outer call's credentials."""
        start = time.time()
        try:
            method = self.methods.get(name)
            if method is None:
                raise MethodNotFound()
            if method.scope is not None and method.scope not in caller.scopes:
                raise InsufficientScope() if caller.webhook_id is not None else InsufficientScope.for_token()
            params, _ = decode.build(values, {})
            result, block = await self._invoke(name, method, params, caller, start)
        except RestError as error:
            return SubFailure(error.code, error.description)
        # later commands reach into this result: pre-rendered JSON fragments become plain values
        if isinstance(result, ListResult):
            return SubSuccess(orjson.loads(orjson.dumps(result.items)), block, result.total, result.next)
        return SubSuccess(orjson.loads(orjson.dumps(result)), block)

    async def _limit_rate(self, portal: Portal, request: Request, now: float) -> None:
        """docs/behaviour.md#rest-rate-limit: the leaky bucket of (portal, client IP), before anything else. Raises: QueryLimitExceeded."""
        default = self.limits.rate
        burst = portal.rate_burst if portal.rate_burst is not None else (default.burst if default else None)
        drain = portal.rate_drain if portal.rate_drain is not None else (default.drain if default else None)
        if not burst or drain is None:
            return
        client = request.client.host if request.client else ""  # as SiplineApp resolved it (client_address.py)
        if not await self.counters.admit(f"{portal.id}|{client}", Rate(burst, drain), now):
            raise QueryLimitExceeded()


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
    if is_digits(declared, 18) and int(declared) > MAX_BODY:
        raise RequestTooLarge(f"Request body exceeds {MAX_BODY} bytes")
    chunks, size = [], 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_BODY:
                raise RequestTooLarge(f"Request body exceeds {MAX_BODY} bytes")
            chunks.append(chunk)
    except ClientDisconnect:  # gone, or cut off by the request deadline (request_deadline.py)
        raise ArgumentError("The connection closed before the request body was complete") from None
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
