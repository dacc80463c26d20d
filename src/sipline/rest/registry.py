"""The REST methods sipline serves: wire name → handler, scope, precondition, error overrides."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from sipline.rest import events as ev
from sipline.rest import extensions, helpers
from sipline.rest import voximplant as vox
from sipline.rest.errors import WireMapping
from sipline.rest.helpers import MethodList
from sipline.rest.params import Params
from sipline.telephony import errors as tel
from sipline.telephony.caller import Caller
from sipline.telephony.lines import require_numbers_right
from sipline.telephony.services import Services

Handler = Callable[[Params, Caller, Services], Awaitable[object]]


@dataclass(frozen=True)
class Method:
    handler: Handler
    scope: str | None  # None: a global method, open to every caller
    # checked after auth and before the handler decodes any parameter
    precondition: Callable[[Caller], None] | None = None
    # this method's own wire code/status for a telephony error (docs/behaviour.md#sip-update, docs/behaviour.md#sip-delete, docs/behaviour.md#line-methods)
    errors: dict[type[tel.TelephonyError], WireMapping] = field(default_factory=dict)
    # the handler answers with the portal's addresses: its caller carries `portal_base`
    links: bool = False


def _telephony(handler: Handler, **errors: WireMapping) -> Method:
    return Method(
        handler,
        scope="telephony",
        precondition=require_numbers_right,
        errors={getattr(tel, name): mapping for name, mapping in errors.items()},
    )


METHODS: dict[str, Method] = {
    "voximplant.sip.add": _telephony(vox.sip_add),
    "voximplant.sip.update": _telephony(vox.sip_update),  # LineNotFound: 404
    "voximplant.sip.get": _telephony(vox.sip_get),
    "voximplant.sip.delete": _telephony(vox.sip_delete, LineNotFound=("ERROR_NOT_FOUND", 400)),
    "voximplant.sip.status": _telephony(vox.sip_status),
    "voximplant.sip.connector.status": _telephony(vox.sip_connector_status),
    "voximplant.line.get": _telephony(vox.line_get),
    "voximplant.line.outgoing.get": _telephony(vox.line_outgoing_get),
    "voximplant.line.outgoing.set": _telephony(vox.line_outgoing_set),
    "voximplant.line.outgoing.sip.set": _telephony(vox.line_outgoing_sip_set, LineNotFound=("ERROR_ARGUMENT", 400)),
    # docs/behaviour.md#url-get: for everyone with the scope, no right needed [D]
    "voximplant.url.get": Method(vox.url_get, scope="telephony", links=True),
    "sipline.sip.bindings": _telephony(extensions.sip_bindings),  # LineNotFound: 404, as update
    "sipline.sip.history": _telephony(extensions.sip_history),  # LineNotFound: 404, as update
    "sipline.sip.trace": _telephony(extensions.sip_trace),  # LineNotFound: 404, as update
    "sipline.sip.providers": _telephony(extensions.sip_providers),
}


async def _batch(params: Params, caller: Caller, services: Services) -> object:
    raise AssertionError("batch runs in the endpoint, which holds the registry")  # pragma: no cover


_listing = MethodList(METHODS)  # scope, methods, method.get describe this registry, themselves included
METHODS.update(
    {
        "batch": Method(_batch, scope=None),
        "scope": Method(_listing.scope, scope=None),
        "methods": Method(_listing.methods, scope=None),
        "method.get": Method(_listing.method_get, scope=None),
        "server.time": Method(helpers.server_time, scope=None),
        "app.info": Method(helpers.app_info, scope=None),
        "profile": Method(helpers.profile, scope=None),
        "feature.get": Method(helpers.feature_get, scope=None),
        # global, as in Bitrix24: which events a caller may bind depends on its scopes (docs/behaviour.md#event-names)
        "events": Method(ev.events, scope=None),
        "event.bind": Method(ev.event_bind, scope=None),
        "event.unbind": Method(ev.event_unbind, scope=None),
        "event.get": Method(ev.event_get, scope=None),
        "event.offline.get": Method(ev.offline_get, scope=None),
        "event.offline.clear": Method(ev.offline_clear, scope=None),
        "event.offline.error": Method(ev.offline_error, scope=None),
        "event.offline.list": Method(ev.offline_list, scope=None),
    }
)
