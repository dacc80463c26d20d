"""The lines page (docs/behaviour.md#dashboard): the table of `sip.get` with each line's state, filtered
by type, status and title, and its rows re-read every few seconds by the page's script."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response

from sipline.store.records import LineState, LineType, StatusResult
from sipline.web.site import Need, Site, caller_of

TYPES = tuple(kind.value for kind in LineType)
STATUSES = tuple(status.value for status in StatusResult)


@dataclass(frozen=True)
class Shown:
    """What the filter form asks for; values it does not know are ignored."""

    type: str = ""
    status: str = ""
    search: str = ""

    @classmethod
    def of(cls, request: Request) -> Shown:
        query = request.query_params
        kind, status = query.get("type", ""), query.get("status", "")
        return cls(
            type=kind if kind in TYPES else "",
            status=status if status in STATUSES else "",
            search=query.get("q", "")[:255],
        )

    def keeps(self, state: LineState) -> bool:
        line = state.line
        if self.type and line.type.value != self.type:
            return False
        if self.status and status_of(state) != self.status:
            return False
        return not self.search or self.search.casefold() in line.title.casefold()


def status_of(state: LineState) -> str:
    """A cloud line's STATUS_RESULT; an office line is `success` while a PBX is registered, else `wait`."""
    if state.registration is not None:
        return state.registration.status_result.value
    return StatusResult.SUCCESS.value if state.bindings else StatusResult.WAIT.value


async def lines(site: Site, request: Request) -> Response:
    visitor = await site.allowed(request, Need.TELEPHONY)
    shown = Shown.of(request)
    states = await site.services.lines.states(caller_of(visitor))
    rows = [state for state in states if shown.keeps(state)]
    template = "lines_rows.html" if request.url.path.endswith("/rows") else "lines.html"
    return site.page(
        request,
        template,
        visitor,
        rows=rows,
        total=len(states),
        shown=shown,
        types=TYPES,
        statuses=STATUSES,
        status_of=status_of,
    )


ROUTES = [("/ui/", lines, ("GET",)), ("/ui/lines/rows", lines, ("GET",))]
