"""Deliveries of online events (docs/behaviour.md#event-delivery), the keys that sign them
(docs/behaviour.md#event-signature) and the bounds of the queues (docs/behaviour.md#event-bounds).

A delivering process works in rounds: one transaction records the outcomes of the attempts that
ended and leases the next due rows. A row is due at `next_at` while no lease on it is live; it is
never leased while an earlier row of the same handler and line is queued, so one line's events
reach one handler in order. On PostgreSQL the rows are locked with SKIP LOCKED as they are leased,
so processes running rounds at once lease different rows; a lease that runs out (its process died)
lets the row be leased again.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence

import orjson
import sqlalchemy as sa

from sipline.store import schema as t
from sipline.store.crypto import Cell, SecretBox
from sipline.store.event_records import ClaimedDelivery, DeliveryOutcome, HandlerState
from sipline.store.records import EventName
from sipline.store.sql_base import SqlPart

_d, _h = t.event_delivery, t.event_handler
_earlier = _d.alias("earlier")
_FREE = sa.or_(_d.c.lease_until.is_(None), _d.c.lease_until < sa.bindparam("b_now"))
_HEAD_OF_LINE = ~sa.exists().where(
    _earlier.c.handler_id == _d.c.handler_id, _earlier.c.line_id == _d.c.line_id, _earlier.c.id < _d.c.id
)
_CLAIMED = (
    sa.select(
        _d,
        _h.c.handler.label("handler_url"),
        _h.c.auth_type,
        _h.c.user_number,
        t.app.c.client_id,
        t.app.c.status.label("app_status"),
        t.app.c.scopes.label("app_scopes"),
        t.portal.c.domain.label("portal_domain"),
        t.portal.c.member_id,
    )
    .select_from(
        _d.outerjoin(_h, _h.c.id == _d.c.handler_id)
        .outerjoin(t.app, t.app.c.id == _d.c.app_id)
        .join(t.portal, t.portal.c.id == _d.c.portal_id)
    )
    .order_by(_d.c.id)
)
CANDIDATES_PER_SLOT = 4  # rows looked at per free slot, so that handlers at their cap do not starve others


class SqlDeliveries(SqlPart):
    def delivery_due(self, now: float) -> bool:
        query = sa.select(_d.c.id).where(_d.c.next_at <= now, _FREE).limit(1)
        return self.conn.execute(query, {"b_now": now}).first() is not None

    def delivery_round(
        self,
        worker: str,
        now: float,
        outcomes: Sequence[DeliveryOutcome],
        *,
        slots: int,
        handler_slots: dict[int, int],
        per_handler: int,
        lease_until: float,
    ) -> list[ClaimedDelivery]:
        """Record `outcomes` (of rows `worker` leased), then lease up to `slots` due rows, at most
        `per_handler` of a handler less what it has in flight (`handler_slots`: in flight by handler)."""
        self._record(worker, outcomes)
        if slots <= 0:
            return []
        full = [handler for handler, busy in handler_slots.items() if busy >= per_handler]
        query = (
            sa.select(_d.c.id, _d.c.handler_id)
            .where(_d.c.next_at <= now, _FREE, _HEAD_OF_LINE, _d.c.handler_id.not_in(full))
            .order_by(_d.c.id)
            .limit(slots * CANDIDATES_PER_SLOT)
            .with_for_update(skip_locked=True, of=_d)
        )
        taken: dict[int, int] = {}
        chosen: list[int] = []
        for delivery_id, handler_id in self.conn.execute(query, {"b_now": now}):
            busy = handler_slots.get(handler_id, 0) + taken.get(handler_id, 0)
            if busy < per_handler:
                taken[handler_id] = taken.get(handler_id, 0) + 1
                chosen.append(delivery_id)
                if len(chosen) == slots:
                    break
        if not chosen:
            return []
        self.conn.execute(sa.update(_d).where(_d.c.id.in_(chosen)).values(lease_owner=worker, lease_until=lease_until))
        return [_claimed(row) for row in self.conn.execute(_CLAIMED.where(_d.c.id.in_(chosen))).mappings()]

    def _record(self, worker: str, outcomes: Sequence[DeliveryOutcome]) -> None:
        mine = sa.and_(_d.c.id == sa.bindparam("b_id"), _d.c.lease_owner == worker)
        done = [{"b_id": o.delivery_id} for o in outcomes if o.delivered or o.next_at is None]
        if done:
            self.conn.execute(sa.delete(_d).where(mine), done)
        retried = [o for o in outcomes if not o.delivered and o.next_at is not None]
        if retried:
            self.conn.execute(
                sa.update(_d)
                .where(mine)
                .values(
                    attempts=_d.c.attempts + 1,
                    next_at=sa.bindparam("b_next"),
                    last_error=sa.bindparam("b_error"),
                    url=sa.bindparam("b_url"),
                    body=sa.bindparam("b_body"),
                    lease_owner=None,
                    lease_until=None,
                ),
                [
                    {
                        "b_id": o.delivery_id,
                        "b_next": o.next_at,
                        "b_error": o.error[:255],
                        "b_url": o.url,
                        "b_body": o.body,
                    }
                    for o in retried
                ],
            )
        delivered = {o.handler_id: o.at for o in outcomes if o.delivered}
        if delivered:
            self.conn.execute(
                sa.update(_h)
                .where(_h.c.id == sa.bindparam("b_id"))
                .values(delivered_at=sa.bindparam("b_at"), failing_since=None),
                [{"b_id": handler, "b_at": at} for handler, at in delivered.items()],
            )
        failed = {o.handler_id: o for o in outcomes if not o.delivered}
        if failed:
            self.conn.execute(
                sa.update(_h)
                .where(_h.c.id == sa.bindparam("b_id"))
                .values(
                    failing_since=sa.func.coalesce(_h.c.failing_since, sa.bindparam("b_at")),
                    last_error=sa.bindparam("b_error"),
                    last_error_at=sa.bindparam("b_at"),
                ),
                [{"b_id": handler, "b_at": o.at, "b_error": o.error[:255]} for handler, o in failed.items()],
            )

    # -- the keys that sign (docs/behaviour.md#event-signature) -----------------------------------------

    def signing_key(self, portal_id: int, app_id: int | None) -> str:
        """The app's client secret; for a webhook-bound handler, or an app made before its secret was
        kept, the portal's signing secret (made now if it has none)."""
        if app_id is not None:
            sealed = self.conn.execute(sa.select(t.app.c.secret).where(t.app.c.id == app_id)).scalar()
            if sealed is not None:
                return self.box.open(sealed, Cell(t.app.name, "secret", app_id))
        return self.portal_signing_secret(portal_id)

    def portal_signing_secret(self, portal_id: int) -> str:
        cell = Cell(t.portal.name, "signing_secret", portal_id)
        sealed = self.conn.execute(sa.select(t.portal.c.signing_secret).where(t.portal.c.id == portal_id)).scalar()
        if sealed is not None:
            return self.box.open(sealed, cell)
        secret = secrets.token_hex(32)
        self.conn.execute(
            sa.update(t.portal).where(t.portal.c.id == portal_id).values(signing_secret=self.box.seal(secret, cell))
        )
        return secret

    def _reseal_event_secrets(self, new_box: SecretBox) -> int:
        count = 0
        for table, column in ((t.app, "secret"), (t.portal, "signing_secret")):
            rows = self.conn.execute(sa.select(table.c.id, table.c[column]).where(table.c[column].is_not(None)))
            for row_id, sealed in rows.all():
                cell = Cell(table.name, column, row_id)
                resealed = new_box.seal(self.box.open(sealed, cell), cell)
                self.conn.execute(sa.update(table).where(table.c.id == row_id).values({column: resealed}))
                count += 1
        return count

    # -- bounds and what the operator sees (docs/behaviour.md#event-bounds) ---------------------------

    def trim_event_queues(self, max_queued: int) -> list[tuple[int, str, int]]:
        """Drop the oldest queued events of each portal holding more than `max_queued` (offline ones
        first, then deliveries); returns (portal id, event, dropped) of each drop."""
        totals: dict[int, int] = {}
        for table in (t.event_offline, _d):
            query = sa.select(table.c.portal_id, sa.func.count()).group_by(table.c.portal_id)
            for portal_id, count in self.conn.execute(query):
                totals[portal_id] = totals.get(portal_id, 0) + count
        dropped: dict[tuple[int, str], int] = {}
        for portal_id, total in totals.items():
            excess = total - max_queued
            for table in (t.event_offline, _d):
                if excess <= 0:
                    break
                oldest = sa.select(table.c.id).where(table.c.portal_id == portal_id).order_by(table.c.id).limit(excess)
                gone = self.conn.execute(
                    sa.delete(table).where(table.c.id.in_(oldest)).returning(table.c.event)
                ).scalars()
                for event in gone:
                    dropped[(portal_id, event)] = dropped.get((portal_id, event), 0) + 1
                    excess -= 1
        return [(portal_id, event, count) for (portal_id, event), count in dropped.items()]

    def queued_events(self) -> dict[str, int]:
        """Events waiting by name: online deliveries and offline events together."""
        queued = {name.value: 0 for name in EventName}
        for table in (_d, t.event_offline):
            for event, count in self.conn.execute(sa.select(table.c.event, sa.func.count()).group_by(table.c.event)):
                queued[event] = queued.get(event, 0) + count
        return queued

    def handler_states(self, portal_id: int | None) -> list[HandlerState]:
        online = sa.select(sa.func.count()).where(_d.c.handler_id == _h.c.id).scalar_subquery()
        offline = (
            sa.select(sa.func.count())
            .where(
                t.event_offline.c.portal_id == _h.c.portal_id,
                t.event_offline.c.owner == _h.c.owner,
                t.event_offline.c.event == _h.c.event,
            )
            .scalar_subquery()
        )
        query = (
            sa.select(_h, t.portal.c.domain, sa.case((_h.c.handler == "", offline), else_=online).label("queued"))
            .join(t.portal, t.portal.c.id == _h.c.portal_id)
            .order_by(_h.c.id)
        )
        if portal_id is not None:
            query = query.where(_h.c.portal_id == portal_id)
        return [
            HandlerState(
                id=row["id"],
                portal_domain=row["domain"],
                owner=row["owner"],
                event=row["event"],
                handler=row["handler"],
                auth_type=row["auth_type"],
                queued=row["queued"],
                failing_since=row["failing_since"],
                last_error=row["last_error"],
                delivered_at=row["delivered_at"],
            )
            for row in self.conn.execute(query).mappings()
        ]

    def retry_event_handlers(self, now: float, portal_id: int | None, handler_id: int | None) -> int:
        """Make the queued deliveries of failing handlers (or of `handler_id`, failing or not) due now."""
        handlers = sa.select(_h.c.id)
        if handler_id is not None:
            handlers = handlers.where(_h.c.id == handler_id)
        else:
            handlers = handlers.where(_h.c.failing_since.is_not(None))
        if portal_id is not None:
            handlers = handlers.where(_h.c.portal_id == portal_id)
        due = sa.update(_d).where(_d.c.handler_id.in_(handlers), _d.c.next_at > now).values(next_at=now)
        return self.conn.execute(due).rowcount

    def uninstall_app_events(self, app_id: int, now: float) -> int:
        """docs/behaviour.md#event-delivery: the app's ONAPPUNINSTALL handlers get the event (its URL
        kept in the row, the handlers go); its other deliveries, offline events and handlers go.
        Returns how many ONAPPUNINSTALL deliveries were queued."""
        app = self.conn.execute(sa.select(t.app.c.portal_id, t.app.c.client_id).where(t.app.c.id == app_id)).one()
        self.conn.execute(sa.delete(_d).where(_d.c.app_id == app_id))
        self.conn.execute(
            sa.delete(t.event_offline).where(
                t.event_offline.c.portal_id == app.portal_id, t.event_offline.c.owner == app.client_id
            )
        )
        bound = self.conn.execute(
            sa.select(_h.c.id, _h.c.handler).where(
                _h.c.app_id == app_id, _h.c.event == EventName.APP_UNINSTALL.value, _h.c.handler != ""
            )
        ).all()
        data = orjson.dumps({"LANGUAGE_ID": "en", "CLEAN": 0}).decode()
        if bound:
            self.conn.execute(
                sa.insert(_d),
                [
                    {
                        "handler_id": handler_id,
                        "portal_id": app.portal_id,
                        "app_id": app_id,
                        "line_id": 0,
                        "event": EventName.APP_UNINSTALL.value,
                        "data": data,
                        "created_at": now,
                        "next_at": now,
                        "url": url,
                        "attempts": 0,
                    }
                    for handler_id, url in bound
                ],
            )
        self.conn.execute(sa.delete(_h).where(_h.c.app_id == app_id))
        return len(bound)


def _claimed(row: sa.RowMapping) -> ClaimedDelivery:
    return ClaimedDelivery(
        id=row["id"],
        handler_id=row["handler_id"],
        portal_id=row["portal_id"],
        app_id=row["app_id"],
        line_id=row["line_id"],
        event=row["event"],
        data=orjson.loads(row["data"]),
        created_at=row["created_at"],
        url=row["url"],
        body=row["body"],
        attempts=row["attempts"],
        handler_url=row["handler_url"],
        auth_type=row["auth_type"] or 0,
        user_number=row["user_number"] or 0,
        client_id=row["client_id"],
        app_status=row["app_status"] or "",
        app_scopes=row["app_scopes"] or "",
        portal_domain=row["portal_domain"],
        member_id=row["member_id"],
    )
