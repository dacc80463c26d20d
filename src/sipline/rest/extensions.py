"""sipline's own methods, beside Bitrix24's; named `sipline.*` so they never clash with a Bitrix24 method."""

from __future__ import annotations

from sipline.rest.envelope import ListResult, local_iso, local_iso_ms
from sipline.rest.params import Params
from sipline.sip.trace import TracedMessage
from sipline.store.records import Binding, StatusChange
from sipline.telephony.caller import Caller
from sipline.telephony.providers import Provider
from sipline.telephony.services import Services


async def sip_bindings(params: Params, caller: Caller, services: Services) -> object:
    """The PBX registrations of an office line (docs/behaviour.md#office-status)."""
    bindings = await services.lines.bindings(caller, params.upper().intval("CONFIG_ID"))
    now = services.lines.clock()
    return [render_binding(binding, now) for binding in bindings]


def render_binding(binding: Binding, now: float) -> dict[str, object]:
    """A row of sipline.sip.bindings."""
    return {
        "CONTACT": binding.contact,
        "SOURCE_ADDRESS": f"{binding.source[0]}:{binding.source[1]}",
        "TRANSPORT": binding.transport,
        "USER_AGENT": binding.user_agent,
        "EXPIRES_AT": local_iso(binding.expires_at),
        "EXPIRES_IN": max(0, int(binding.expires_at - now)),
        "NAT": binding.nat,
        "REACHABLE": binding.reachable,
    }


async def sip_history(params: Params, caller: Caller, services: Services) -> object:
    """A line's status changes, newest first, in pages of 50 as voximplant.sip.get's (docs/behaviour.md#line-history)."""
    page = await services.lines.history(caller, params.upper().intval("CONFIG_ID"), params.start)
    if page.total == 0:
        return []  # as voximplant.sip.get: no total for nothing
    return ListResult([render_change(entry) for entry in page.lines], page.total, page.next)


def render_change(entry: StatusChange) -> dict[str, object]:
    """An entry of sipline.sip.history."""
    return {
        "TIME": local_iso(entry.at),
        "STATUS_RESULT": entry.result.value,
        "STATUS_CODE": entry.code,
        "ERROR_MESSAGE": entry.message,
        "CAUSE": entry.cause.value,
        "CONTACT": entry.contact,
        "SOURCE": entry.source,
        "TRANSPORT": entry.transport,
    }


async def sip_trace(params: Params, caller: Caller, services: Services) -> object:
    """A line's last SIP messages, oldest first as a ladder reads (docs/behaviour.md#line-trace)."""
    messages = await services.lines.trace(caller, params.upper().intval("CONFIG_ID"))
    return [render_traced(message) for message in messages]


def render_traced(message: TracedMessage) -> dict[str, object]:
    """A message of sipline.sip.trace."""
    return {
        "TIME": local_iso_ms(message.at),
        "DIRECTION": "out" if message.outgoing else "in",
        "TRANSPORT": message.transport,
        "LOCAL": message.local,
        "REMOTE": message.remote,
        "MESSAGE": message.text,
    }


def traced_text(message: dict[str, object]) -> str:
    """A message of sipline.sip.trace as SIP loggers print one: a line saying when, which way and where,
    then its text (`sipline line show --trace` and the dashboard's line page print these)."""
    arrow = "->" if message["DIRECTION"] == "out" else "<-"
    head = f"{message['TIME']} {message['TRANSPORT']} {message['LOCAL']} {arrow} {message['REMOTE']}"
    return f"{head}\n" + str(message["MESSAGE"]).replace("\r\n", "\n").rstrip("\n")


async def sip_providers(params: Params, caller: Caller, services: Services) -> object:
    """The providers of the caller's cloud lines, in pages of 50 as voximplant.sip.get's (docs/behaviour.md#providers)."""
    page = await services.lines.providers(caller, params.start)
    if page.total == 0:
        return []  # as voximplant.sip.get: no total for nothing
    return ListResult([render_provider(provider) for provider in page.lines], page.total, page.next)


def render_provider(provider: Provider) -> dict[str, object]:
    """A row of sipline.sip.providers."""
    error = provider.last_error
    return {
        "PROVIDER": provider.name,
        "LINES": provider.lines,
        "BY_STATUS": {status.value: count for status, count in provider.by_status.items()},
        "LAST_ERROR": None
        if error is None
        else {"CODE": error.code, "MESSAGE": error.message, "CAUSE": error.cause.value},
        "LAST_ERROR_TIME": None if error is None else local_iso(error.at),
        "BREAKER": provider.breaker.value,
        "BREAKER_SINCE": None if provider.breaker_since is None else local_iso(provider.breaker_since),
    }
