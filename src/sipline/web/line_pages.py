"""One line's page (docs/behaviour.md#dashboard-line): its fields, edit, delete, register now, history, trace,
and an office line's bindings and the credentials for its PBX.

Everything goes through the services REST uses and is rendered by REST's own renderers (the fields as
voximplant.sip.get, bindings as sipline.sip.bindings, the trace as `sipline line show --trace`), so the page
shows what the API shows and refuses what it refuses, with the same words.
"""

from __future__ import annotations

from urllib.parse import quote

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from sipline.accounts.dashboard import Visitor
from sipline.rest.extensions import render_binding, render_traced, traced_text
from sipline.rest.voximplant import render_line
from sipline.sip.grammar import is_digits
from sipline.store.records import Line, LineState, LineType
from sipline.telephony.caller import Caller
from sipline.telephony.errors import CheckFieldsError, LineNotFound, TelephonyError
from sipline.telephony.outgoing import display_name
from sipline.web.lines_pages import status_of
from sipline.web.site import Need, Site, caller_of

SECRET_FIELDS = ("PASSWORD", "INCOMING_PASSWORD")  # never in the fields; the PBX's password has its own place
PBX_FIELDS = ("INCOMING_SERVER", "INCOMING_LOGIN")  # shown with the PBX's password, not among the fields
EDITED = ("title", "server", "login", "digest_algorithms")  # passed to sip.update's rules when changed
# What a redirect after a change tells the page to say; nothing else a URL holds is shown
NOTICES = {
    "saved": "Saved.",
    "register": "A REGISTER is on its way; its result shows in the history below.",
}


def config_id_of(request: Request) -> int:
    """The CONFIG_ID the path names. Raises: LineNotFound for anything that is none (the 404 page)."""
    text = request.path_params["config_id"]
    if not is_digits(text, 18):
        raise LineNotFound()
    return int(text)


async def state_of(site: Site, caller: Caller, config_id: int) -> LineState:
    """The line with its registration and live binding count. Raises: LineNotFound."""
    found = await site.services.lines.states(caller, config_id)
    if not found:
        raise LineNotFound()
    return found[0]


async def line(site: Site, request: Request) -> Response:
    visitor = await site.allowed(request, Need.TELEPHONY)
    notice = NOTICES.get(request.query_params.get("done", ""))
    return await shown(site, request, visitor, config_id_of(request), notice=notice)


async def shown(
    site: Site,
    request: Request,
    visitor: Visitor,
    config_id: int,
    *,
    status: int = 200,
    notice: str | None = None,
    error: TelephonyError | None = None,
    typed: dict[str, str] | None = None,
) -> Response:
    """The page; after a refused edit (`error`) with what was typed (`typed`) in the form again."""
    caller = caller_of(visitor)
    lines = site.services.lines
    state = await state_of(site, caller, config_id)
    record = state.line
    office = record.type is LineType.OFFICE
    history = await lines.history(caller, config_id, 0)
    trace = [traced_text(render_traced(message)) for message in await lines.trace(caller, config_id)]
    now = lines.clock()
    bindings = [render_binding(binding, now) for binding in await lines.bindings(caller, config_id)] if office else []
    rendered = render_line(record)
    return site.page(
        request,
        "line.html",
        visitor,
        status=status,
        line=record,
        title=display_name(record),
        office=office,
        status_word=status_of(state),
        state=state,
        fields={key: value for key, value in rendered.items() if key not in SECRET_FIELDS + PBX_FIELDS},
        password_set=bool(record.password),
        pbx={key: rendered[key] for key in (*PBX_FIELDS, "INCOMING_PASSWORD")} if office else None,
        bindings=bindings,
        history=history.lines,
        history_total=history.total,
        trace="\n\n".join(trace),
        form={**editable(record), **(typed or {})},
        notice=notice,
        errors=None if error is None else messages_of(error),
    )


def editable(record: Line) -> dict[str, str]:
    """The edit form's fields as the line holds them (PASSWORD is never among them)."""
    return {
        "title": record.title,
        "server": record.server,
        "login": record.login,
        "digest_algorithms": record.digest_algorithms or "",
    }


def messages_of(error: TelephonyError) -> list[str]:
    """What REST's error_description says, one message a line (CheckFieldsError joins them with `<br> `)."""
    return list(error.messages) if isinstance(error, CheckFieldsError) else [str(error)]


def typed_text(form: FormData, name: str) -> str | None:
    """A field as typed, empty included (an empty SERVER is an error to report, not an absent field)."""
    value = form.get(name)
    return value if isinstance(value, str) else None


async def edit(site: Site, request: Request) -> Response:
    """sip.update's rules with the fields that differ from the line's (an unchanged SERVER, LOGIN or
    PASSWORD is not sent: sent, it would start the registration over) and PASSWORD only when typed."""
    visitor, form = await site.change(request, Need.TELEPHONY)
    config_id = config_id_of(request)
    caller = caller_of(visitor)
    record = (await state_of(site, caller, config_id)).line
    current = editable(record)
    typed = {name: value for name in EDITED if (value := typed_text(form, name)) is not None}
    changed = {name: typed[name] if typed.get(name, current[name]) != current[name] else None for name in EDITED}
    try:
        await site.services.lines.update(
            caller,
            config_id,
            type_=record.type.value,
            title=changed["title"],
            server=changed["server"],
            login=changed["login"],
            password=typed_text(form, "password") or None,  # empty: unchanged
            digest_algorithms=changed["digest_algorithms"],
        )
    except LineNotFound:
        raise
    except TelephonyError as error:
        return await shown(site, request, visitor, config_id, status=400, error=error, typed=typed)
    return RedirectResponse(f"/ui/lines/{config_id}?done=saved", status_code=303)


async def delete(site: Site, request: Request) -> Response:
    visitor, _ = await site.change(request, Need.TELEPHONY)
    config_id = config_id_of(request)
    caller = caller_of(visitor)
    name = display_name((await state_of(site, caller, config_id)).line)
    await site.services.lines.delete(caller, config_id)
    return RedirectResponse(f"/ui/?deleted={quote(name, safe='')}", status_code=303)


async def register(site: Site, request: Request) -> Response:
    """A cloud line's REGISTER at once (docs/behaviour.md#dashboard-pages); an office line has none to send."""
    visitor, _ = await site.change(request, Need.TELEPHONY)
    config_id = config_id_of(request)
    caller = caller_of(visitor)
    record = (await state_of(site, caller, config_id)).line
    await site.services.lines.register_now(caller, config_id)
    done = "?done=register" if record.type is LineType.CLOUD else ""
    return RedirectResponse(f"/ui/lines/{config_id}{done}", status_code=303)


ROUTES = [
    ("/ui/lines/{config_id}", line, ("GET",)),
    ("/ui/lines/{config_id}/edit", edit, ("POST",)),
    ("/ui/lines/{config_id}/delete", delete, ("POST",)),
    ("/ui/lines/{config_id}/register", register, ("POST",)),
]
