"""The providers page (docs/behaviour.md#dashboard-pages): the providers the portal's cloud lines register
with, as `sipline.sip.providers` reports them (telephony/providers.py groups and counts; nothing here
re-derives it), each with its lines by status, its newest error and its breaker."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from sipline.sip.grammar import is_digits
from sipline.store.records import BreakerState, StatusResult
from sipline.telephony.lines import PAGE_SIZE
from sipline.web.site import Need, Site, caller_of

# docs/behaviour.md#reg-pacing: each breaker state as a word and a colour class
BREAKER_WORDS = {
    BreakerState.CLOSED: ("Closed", "ok"),
    BreakerState.RECOVERING: ("Recovering", "busy"),
    BreakerState.OPEN: ("Open", "bad"),
}
STATUSES = tuple(StatusResult)


async def providers(site: Site, request: Request) -> Response:
    visitor = await site.allowed(request, Need.TELEPHONY)
    start = request.query_params.get("start", "")
    page = await site.services.lines.providers(caller_of(visitor), int(start) if is_digits(start, 9) else 0)
    return site.page(
        request,
        "providers.html",
        visitor,
        page=page,
        previous=max(page.offset - PAGE_SIZE, 0),
        statuses=STATUSES,
        breaker_words=BREAKER_WORDS,
    )


ROUTES = [("/ui/providers", providers, ("GET",))]
