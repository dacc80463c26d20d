"""Handlers of voximplant.sip.* and voximplant.line.*: decode parameters, call the rules, render.

Rendering follows docs/behaviour.md#line-rendering: line rows as the database returns them,
every non-null value a JSON string; numbers only where Bitrix24 computes them.
"""

from __future__ import annotations

import orjson

from sipline.rest.envelope import ListResult, local_datetime
from sipline.rest.memo import IdentityMemo
from sipline.rest.params import Params
from sipline.store.records import Line, LineType, Registration
from sipline.telephony.caller import Caller
from sipline.telephony.services import Services


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def render_line(line: Line) -> dict[str, object]:
    """A row of voximplant.sip.get: no ID, no APP_ID, each type with its own fields."""
    row: dict[str, object] = {"TYPE": line.type.value, "CONFIG_ID": str(line.config_id)}
    if line.type is LineType.CLOUD:
        row["REG_ID"] = _text(line.reg_id)
    else:
        row["INCOMING_SERVER"] = line.incoming_server
        row["INCOMING_LOGIN"] = line.incoming_login
        row["INCOMING_PASSWORD"] = line.incoming_password
    row["SERVER"] = line.server
    row["LOGIN"] = line.login
    row["PASSWORD"] = line.password
    row["AUTH_USER"] = line.auth_user
    row["OUTBOUND_PROXY"] = line.outbound_proxy
    row["DETECT_LINE_NUMBER"] = line.detect_line_number
    row["LINE_DETECT_HEADER_ORDER"] = line.line_detect_header_order
    row["REGISTRATION_STATUS_CODE"] = _text(line.registration_status_code)
    row["REGISTRATION_ERROR_MESSAGE"] = line.registration_error_message
    row["TITLE"] = line.title
    if line.type is LineType.OFFICE:
        row["DIGEST_ALGORITHMS"] = line.digest_algorithms  # sipline's own, last (README, "Office lines")
    return row


# sip.get is the hot path: keep each line's JSON until the store replaces the record
# (4096 rows ≈ 6 MB at most). Only the page sent is rendered, however many lines match.
def _rendered_row(line: Line) -> orjson.Fragment:
    return orjson.Fragment(orjson.dumps(render_line(line)))


_row_json = IdentityMemo(_rendered_row, limit=4096)


def render_added(line: Line) -> dict[str, object]:
    """The result of voximplant.sip.add: ID first, REG_ID a number, no status yet."""
    row = {"ID": str(line.id), **render_line(line)}
    if line.type is LineType.CLOUD:
        row["REG_ID"] = line.reg_id
    row["REGISTRATION_STATUS_CODE"] = None
    row["REGISTRATION_ERROR_MESSAGE"] = None
    return row


def _line_fields(params: Params) -> dict[str, str | None]:
    return {
        "type_": params.optional_str("TYPE"),
        "title": params.optional_str("TITLE"),
        "server": params.optional_str("SERVER"),
        "login": params.optional_str("LOGIN"),
        "password": params.optional_str("PASSWORD"),
        "digest_algorithms": params.optional_str("DIGEST_ALGORITHMS"),
    }


async def sip_add(params: Params, caller: Caller, services: Services) -> object:
    line = await services.lines.add(caller, **_line_fields(params.upper()))
    return render_added(line)


async def sip_update(params: Params, caller: Caller, services: Services) -> object:
    upper = params.upper()
    await services.lines.update(caller, upper.intval("CONFIG_ID"), **_line_fields(upper))
    return 1


async def sip_get(params: Params, caller: Caller, services: Services) -> object:
    upper = params.upper()
    page = await services.lines.get(
        caller, filter_=upper.raw("FILTER"), sort=upper.raw("SORT"), order=upper.raw("ORDER"), offset=params.start
    )
    if page.total == 0:
        return []  # Bitrix24 sends no total for an empty match [S]
    rows = [_row_json(line) for line in page.lines]
    return ListResult(rows, page.total, page.next)


async def sip_delete(params: Params, caller: Caller, services: Services) -> object:
    await services.lines.delete(caller, params.upper().intval("CONFIG_ID"))
    return 1


async def sip_status(params: Params, caller: Caller, services: Services) -> object:
    return render_status(await services.lines.status(caller, params.upper().intval("REG_ID")))


def render_status(registration: Registration) -> dict[str, object]:
    """The result of voximplant.sip.status (docs/behaviour.md#reg-status)."""
    return {
        "REG_ID": registration.reg_id,
        "LAST_UPDATED": local_datetime(registration.last_updated),
        "ERROR_MESSAGE": registration.error_message,
        "STATUS_CODE": registration.status_code,
        "STATUS_RESULT": registration.status_result.value,
    }


async def sip_connector_status(params: Params, caller: Caller, services: Services) -> object:
    portal = await services.lines.connector(caller)
    result: dict[str, object] = {"FREE_MINUTES": portal.free_minutes, "PAID": portal.paid}
    if portal.paid:
        result["PAID_DATE_END"] = portal.paid_date_end
    return result


async def line_get(params: Params, caller: Caller, services: Services) -> object:
    return await services.outgoing.names(caller) or []  # PHP renders an empty array as []


async def line_outgoing_get(params: Params, caller: Caller, services: Services) -> object:
    return await services.outgoing.get(caller)


async def line_outgoing_set(params: Params, caller: Caller, services: Services) -> object:
    await services.outgoing.set(caller, params.upper().optional_str("LINE_ID"))
    return 1


async def line_outgoing_sip_set(params: Params, caller: Caller, services: Services) -> object:
    await services.outgoing.set_sip(caller, params.upper().intval("CONFIG_ID"))
    return 1


# docs/behaviour.md#url-get: Bitrix24's telephony pages, answered with the dashboard's pages of the
# portal (web/); `#CONFIG_ID#` is Bitrix24's placeholder, which the application replaces [D]
TELEPHONY_PAGES = {
    "detail_statistics": "/ui/providers",
    "buy_connector": "/ui/",
    "edit_config": "/ui/lines/#CONFIG_ID#",
    "lines": "/ui/",
}


async def url_get(params: Params, caller: Caller, services: Services) -> object:
    return {name: caller.portal_base + path for name, path in TELEPHONY_PAGES.items()}
