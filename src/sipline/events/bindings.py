"""The rules of event.bind, event.unbind, event.get and events (docs/behaviour.md#event-bind): who may bind
which event, and to what.

Handlers belong to their owner (an app's client_id; "" for the portal's admin webhooks, sipline's
extension). An administrator binds for any user (AUTH_TYPE) and sees every handler of the owner; any
other user of an app binds, sees and unbinds only handlers of their own AUTH_TYPE, and no offline ones.
Checks run in Bitrix24's order, first failure wins.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from sipline.events.caller import EventCaller
from sipline.events.errors import AccessDenied, ArgumentNull, EventNotFound, HandlerExists, InvalidArgument
from sipline.events.names import TELEPHONY, bindable, listed
from sipline.events.targets import Resolver, check_handler_url
from sipline.store.database import Database
from sipline.store.event_records import EventHandler, HandlerMatch, NewEventHandler
from sipline.store.repository import Repository

ONLINE, OFFLINE = "online", "offline"
MAX_USER = 2**31 - 1  # AUTH_TYPE is a user ID, stored in a 32-bit column


class EventBindings:
    def __init__(
        self,
        db: Database,
        *,
        allow_private_targets: bool = False,
        clock: Callable[[], float] = time.time,
        resolve: Resolver | None = None,
    ) -> None:
        self.db = db
        self.allow_private_targets = (
            allow_private_targets  # --allow-private-targets (docs/behaviour.md#reg-private-targets)
        )
        self.clock = clock
        self.resolve = resolve  # None: the system's resolver

    def names(self, caller: EventCaller, *, scope: str | None, full: bool) -> list[str]:
        """What `events` answers (docs/behaviour.md#event-names)."""
        return listed(caller.scopes, app=caller.app, scope=scope, full=full)

    async def bind(self, caller: EventCaller, *, event: str, event_type: str, handler: str, auth_type: int) -> None:
        """Raises: AccessDenied, ArgumentNull (EVENT, HANDLER), InvalidArgument (EVENT_TYPE, AUTH_TYPE),
        UnsupportedScheme, WrongHandlerUrl, EventNotFound, HandlerExists."""
        _require_allowed(caller)
        if auth_type > 0 and not caller.is_admin and auth_type != caller.user_number:
            raise AccessDenied("Event binding with AUTH_TYPE requires administrator access rights")
        auth_type = max(auth_type, 0) if caller.is_admin else caller.user_number
        if auth_type > MAX_USER:
            raise InvalidArgument("AUTH_TYPE", "must be a user ID")
        name = _required_event(event)
        if _event_type(event_type) == OFFLINE:
            if not caller.is_admin:
                raise AccessDenied("Offline events binding requires administrator access rights")
            handler, auth_type = "", 0
        elif not handler:
            raise ArgumentNull("HANDLER")
        else:
            await check_handler_url(handler, self.allow_private_targets, self.resolve)
        spec = bindable(name, caller.scopes, app=caller.app)
        if spec is None:
            raise EventNotFound()
        if spec.scope == TELEPHONY and not caller.can_modify_numbers:
            raise AccessDenied()  # as every voximplant method (docs/behaviour.md#user-rights)

        def work(repo: Repository) -> EventHandler | None:
            repo.serialise(f"event_handler:{caller.portal_id}")
            new = NewEventHandler(
                portal_id=caller.portal_id,
                owner=caller.owner,
                app_id=_app_row(repo, caller),
                event=spec.name.value,
                handler=handler,
                auth_type=auth_type,
                user_number=caller.user_number,
                options="{}",  # no option means anything to sipline's events yet
                created_at=self.clock(),
            )
            return repo.insert_event_handler(new)

        if await self.db.write(work, touches=()) is None:
            raise HandlerExists()

    async def unbind(
        self, caller: EventCaller, *, event: str, event_type: str, handler: str, auth_type: int | None
    ) -> int:
        """How many handlers went; `auth_type` None: any the caller may see.

        Raises: AccessDenied, ArgumentNull (EVENT, HANDLER), InvalidArgument (EVENT_TYPE)."""
        _require_allowed(caller)
        name = _required_event(event)
        if _event_type(event_type) == OFFLINE:
            if not caller.is_admin:
                raise AccessDenied("Offline events unbinding requires administrator access rights")
            handler, auth_type = "", None
        elif not handler:
            raise ArgumentNull("HANDLER")
        elif auth_type is not None and not caller.is_admin and auth_type != caller.user_number:
            raise AccessDenied("Event unbinding with AUTH_TYPE requires administrator access rights")
        elif auth_type is None and not caller.is_admin:
            auth_type = caller.user_number
        match = HandlerMatch(caller.portal_id, caller.owner, name, handler, auth_type)
        return await self.db.write(lambda repo: repo.delete_event_handlers(match), touches=())

    async def get(self, caller: EventCaller) -> list[EventHandler]:
        """The owner's handlers, oldest first; a non-admin's only. Raises: AccessDenied."""
        _require_allowed(caller)
        auth_type = None if caller.is_admin else caller.user_number
        return await self.db.read(lambda repo: repo.event_handlers(caller.portal_id, caller.owner, auth_type))


def _require_allowed(caller: EventCaller) -> None:
    """Bitrix24 takes event.* from applications only; sipline from admin webhooks too."""
    if caller.webhook and not caller.is_admin:
        raise AccessDenied("Events through a webhook require administrator access rights")


def _required_event(event: str) -> str:
    if not event:
        raise ArgumentNull("EVENT")
    return event.upper()


def _event_type(event_type: str) -> str:
    kind = event_type.lower() or ONLINE
    if kind not in (ONLINE, OFFLINE):
        raise InvalidArgument("EVENT_TYPE", "Value must be one of {online|offline}")
    return kind


def _app_row(repo: Repository, caller: EventCaller) -> int | None:
    if caller.webhook:
        return None
    found = repo.app_by_client_id(caller.owner)
    if found is None:  # uninstalled and deleted while this call ran
        raise AccessDenied()
    return found[0].id
