"""The repository over SQLAlchemy Core; the same statements run on SQLite and PostgreSQL.

One class per part of the interface (store/repository.py), composed here; what they share
(the connection, sealing, the driver's cursor for hot paths) is in sql_base.py.
"""

from __future__ import annotations

import sqlalchemy as sa

from sipline.store.accounts_sql import SqlAccounts
from sipline.store.apps_sql import SqlApps
from sipline.store.bindings_sql import SqlBindings
from sipline.store.dashboard_sql import SqlDashboard
from sipline.store.deliveries_sql import SqlDeliveries
from sipline.store.event_handlers_sql import SqlEventHandlers
from sipline.store.event_offline_sql import SqlEventOffline
from sipline.store.history_sql import SqlHistory
from sipline.store.lines_sql import SqlLines
from sipline.store.providers_sql import SqlProviders
from sipline.store.registrations_sql import SqlRegistrations
from sipline.store.trace_sql import SqlTrace


class SqlRepository(
    SqlAccounts,
    SqlApps,
    SqlLines,
    SqlRegistrations,
    SqlBindings,
    SqlHistory,
    SqlTrace,
    SqlProviders,
    SqlEventHandlers,
    SqlEventOffline,
    SqlDeliveries,
    SqlDashboard,
):
    """Repository (store/repository.py) on one open transaction."""

    # -- the database itself (DatabaseRepository) --------------------------------------------------

    def ping(self) -> None:
        self.conn.execute(sa.select(1)).scalar_one()

    def notify(self, channel: str, payload: str) -> None:
        self.conn.execute(sa.select(sa.func.pg_notify(channel, payload)))

    def serialise(self, name: str) -> None:
        if self.conn.dialect.name == "postgresql":
            self.conn.execute(sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtext(name))))
