"""A line's registration machine rebuilt from what the store holds (docs/behaviour.md#reg-lifecycle), pure."""

from __future__ import annotations

import logging
import random
from collections.abc import Callable

from sipline.registration.attempt import Session, session_contact
from sipline.registration.history import LineHistory
from sipline.registration.line import LineRegistration, Status
from sipline.registration.request import Account
from sipline.registration.schedule import Retries
from sipline.sip.address import InvalidAddress
from sipline.sip.resolve import default_transport
from sipline.store.records import Cause, Line, Registration, StatusChange, StatusResult

log = logging.getLogger("sipline.registration")


def line_account(line: Line) -> Account:
    """Raises: InvalidAddress for a SERVER or proxy the engine cannot use."""
    return Account.from_fields(line.server, line.outbound_proxy, line.login, line.auth_user, line.password)


def machine_from_store(
    line: Line,
    registration: Registration,
    first_attempt_at: float,
    *,
    rng: random.Random,
    public_address: bool,
    retries: Retries,
    wall: float,
    moved: bool = False,
) -> LineRegistration | None:
    """The line's machine, continuing its Call-ID and CSeq; None (logged) for a SERVER it cannot use.
    `moved`: taken over through a lease (docs/behaviour.md#line-history: "lease moved", unless it is new)."""
    try:
        parsed = line_account(line)
    except InvalidAddress:
        log.warning("line %d has a SERVER the engine cannot use; not registering it", line.id)
        return None
    session = Session(
        call_id=registration.call_id,
        token=registration.contact_token,
        cseq=registration.cseq_reserved,
        expires=registration.expires_requested,
        registered_contact=registration.registered_contact,
        sent_contact=registration.sent_contact,
    )
    result = registration.status_result
    if result is StatusResult.IN_PROGRESS:
        result = StatusResult.WAIT  # the attempt died with the previous process
    status = Status(result, registration.status_code, registration.error_message, registration.last_updated)
    history = LineHistory(line.config_id, line.portal_domain or str(line.portal_id))
    moved = moved and registration.cseq_reserved > 0  # an engine had it before (a new line has reserved nothing)
    if moved or result is not registration.status_result:
        cause = Cause.LEASE_MOVED if moved else Cause.RESTARTED
        history.noted(StatusChange(wall, result, registration.status_code, registration.error_message, cause))
    return LineRegistration(
        line.id,
        registration.reg_id,
        parsed,
        session,
        status,
        rng=rng,
        first_attempt_at=first_attempt_at,
        public_address=public_address,
        retries=retries,
        history=history,
    )


def first_contact(
    machine: LineRegistration, registration: Registration, local: Callable[[str], tuple[str, int]]
) -> str:
    """The Contact the line's REGISTERs may carry first. One whose REGISTER's outcome was never
    learnt stays until it is retired; else the line's own, stored with its first write, so its
    first REGISTER need not wait for one (docs/behaviour.md#reg-lifecycle)."""
    sent = registration.sent_contact
    if sent is None or sent == registration.registered_contact:
        return session_contact(machine.session, default_transport(machine.account.next_hop), local)
    return sent
