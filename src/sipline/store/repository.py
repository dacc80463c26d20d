"""The store's interface: what the rules above may ask of one open transaction.

A repository is bound to one transaction (see database.py): everything a rule
does through it commits together or not at all. Records come back with secrets
decrypted; secrets go in as plain text and are sealed on the way down.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from sipline.store.crypto import SecretBox
from sipline.store.event_records import (
    ClaimedDelivery,
    DeliveryOutcome,
    EventHandler,
    HandlerMatch,
    HandlerState,
    NewEventHandler,
    OfflineEvent,
    OfflineQuery,
)
from sipline.store.records import (
    App,
    Binding,
    DashboardVisit,
    LeaseRound,
    Line,
    LineState,
    LineType,
    NewLine,
    OfficeUser,
    Portal,
    ProviderState,
    Registration,
    RegistrationUpdate,
    StatusChange,
    StatusResult,
    TokenGrant,
    TracedRow,
    User,
    WebhookGrant,
    WebhookInfo,
)


class AccountRepository(Protocol):
    def default_portal(self) -> Portal | None:
        """The first portal created, which serves every host in the embedded mode."""

    def portal(self, portal_id: int) -> Portal: ...

    def lock_portal(self, portal_id: int) -> Portal:
        """The portal, locked until commit, so that per-portal limits hold under concurrency."""

    def insert_portal(
        self, *, domain: str, title: str, member_id: str, max_cloud_lines: int, now: float, max_lines: int | None = None
    ) -> Portal:
        """`max_lines` None: the column's default."""

    def insert_user(self, *, portal_id: int, name: str, is_admin: bool, can_modify_numbers: bool) -> tuple[int, int]:
        """Returns (row id, the user number shown to the portal)."""

    def user_row_id(self, portal_id: int, number: int) -> int | None: ...

    def insert_webhook(self, *, portal_id: int, user_row_id: int, code_hash: str, scopes: str, now: float) -> int: ...

    def webhook_grant(self, code_hash: str) -> WebhookGrant | None:
        """The active webhook with this code hash and its user, or None."""

    def set_default_line(self, portal_id: int, line_id: str | None) -> None: ...

    def portal_by_domain(self, domain: str) -> Portal | None: ...

    def portal_realms(self) -> dict[str, tuple[str, ...] | None]:
        """The INCOMING_SERVER of every portal that has its own, lower-cased, with the digest algorithms
        its office lines are challenged with (None: the service's)."""

    def portals(self) -> list[Portal]: ...

    def update_portal(self, portal_id: int, changes: dict[str, object]) -> None:
        """Set columns of the portal table (title, incoming_server, rate_burst, rate_drain, active,
        digest_algorithms, max_lines)."""

    def user(self, portal_id: int, number: int) -> User | None: ...

    def set_user_active(self, portal_id: int, number: int, active: bool) -> bool:
        """False: no such user."""

    def webhooks(self, portal_id: int) -> list[WebhookInfo]: ...

    def revoke_webhook(self, portal_id: int, webhook_id: int) -> bool:
        """False: no such webhook on this portal."""


class AppRepository(Protocol):
    def insert_app(
        self,
        *,
        portal_id: int,
        client_id: str,
        secret_hash: str,
        name: str,
        scopes: str,
        handler_url: str,
        allowed_users: str | None,
        now: float,
        secret: str | None = None,
    ) -> App: ...

    def app_by_client_id(self, client_id: str) -> tuple[App, str] | None:
        """The app and the hash of its client secret."""

    def app_by_row(self, app_id: int) -> App: ...

    def apps(self, portal_id: int) -> list[App]: ...

    def set_app_active(self, client_id: str, active: bool) -> bool:
        """False: no such app."""

    def delete_app(self, client_id: str) -> bool:
        """The app gone with its codes and tokens; False: no such app."""

    def insert_code(self, *, app_id: int, user_row_id: int, code_hash: str, expires_at: float) -> None: ...

    def take_code(self, code_hash: str) -> tuple[int, int, float] | None:
        """(app row id, user row id, expires at) of a one-time code; it is gone afterwards."""

    def insert_token(
        self,
        *,
        app_id: int,
        user_row_id: int,
        access_hash: str,
        refresh_hash: str,
        access_expires_at: float,
        refresh_expires_at: float,
        now: float,
    ) -> None: ...

    def take_refresh(self, refresh_hash: str) -> tuple[int, int, float] | None:
        """(app row id, user row id, refresh expiry) of a refresh token, spent by this call."""

    def token_grant(self, access_hash: str) -> TokenGrant | None: ...

    def user_number(self, user_row_id: int) -> int: ...


class LineRepository(Protocol):
    def lines(self, portal_id: int, app_id: str | None) -> list[Line]:
        """Lines of a portal in CONFIG_ID order; only those with `app_id` unless it is None."""

    def line_by_config(self, portal_id: int, config_id: int) -> Line | None: ...

    def line_states(
        self,
        now: float,
        *,
        portal_id: int | None = None,
        config_id: int | None = None,
        status: StatusResult | None = None,
    ) -> list[LineState]:
        """Lines of every portal (or one), in CONFIG_ID order, each with its registration and its
        bindings live at `now`; only the line `config_id`, only the lines whose STATUS_RESULT is
        `status` (office lines have none), when given. For operators: every app's lines."""

    def count_cloud_lines(self, portal_id: int) -> int: ...

    def count_lines(self, portal_id: int, type_: LineType | None = None) -> int:
        """The portal's lines of every app, of one type or (None) of both."""

    def title_taken(self, portal_id: int, title_key: str, except_line_id: int | None) -> bool: ...

    def next_config_id(self) -> int:
        """A CONFIG_ID never given before (a deleted line's is not reused), for the next `insert_line`."""

    def insert_line(self, new: NewLine, now: float) -> Line:
        """Allocates REG_ID with a `wait` registration when `new.session` is set.

        Raises: sqlalchemy.exc.IntegrityError when `new.title_key` (not empty) is the portal's already.
        """

    def update_line(self, line_id: int, changes: dict[str, object]) -> None:
        """Set columns of the line table (a new title with its title_key); sealed columns
        (lines_sql.SEALED_COLUMNS) are sealed here."""

    def delete_line(self, line_id: int) -> None:
        """Removes the line and its registration."""

    def reseal(self, new_box: SecretBox) -> int:
        """Every sealed secret opened with the store's key and sealed again with `new_box`; how many."""

    def sample_secret(self) -> str | None:
        """One stored secret, decrypted: proves the key opens what is stored.

        Raises: KeyMaterialError when it does not.
        """


class RegistrationRepository(Protocol):
    def registration(self, portal_id: int, app_id: str | None, reg_id: int) -> Registration | None: ...

    def reset_registration(self, reg_id: int, now: float) -> None:
        """Back to `wait` with code 0 and no message (docs/behaviour.md#line-update-resets-status)."""

    def cloud_registrations(self, line_ids: Sequence[int] | None = None) -> list[tuple[Line, Registration]]:
        """Every cloud line of every portal (or just those of `line_ids`) with its registration."""

    def lease_round(self, worker: str, lease_time: float, max_moves: int, acquire: bool = True) -> LeaseRound:
        """Heartbeat `worker` (which renews all its leases; a stale heartbeat first gives them all
        up), take lines free or of stale workers up to its share of the cloud lines
        (ceil(lines / live workers)) unless not `acquire`, give up at most `max_moves` above it.
        Times are the database's clock, so workers' clocks need not agree (PostgreSQL only)."""

    def release_leases(self, worker: str) -> None:
        """A worker that stops: its lines are free for the others at once."""

    def save_registrations(self, updates: list[RegistrationUpdate], owner: str | None = None) -> None:
        """Write the engine's status changes and session state, many lines in one statement, with the
        history entries the updates carry; with `owner` (a `sip` worker), only for the lines whose
        lease it holds."""


class HistoryRepository(Protocol):
    def add_history(self, entries: Sequence[tuple[int, StatusChange]], owner: str | None = None) -> None:
        """Append (line id, entry) pairs, oldest first, and keep each line's newest 100 (docs/behaviour.md#line-history);
        entries of lines that no longer exist (or, with `owner`, whose lease it does not hold) are dropped."""

    def history(self, line_id: int) -> list[StatusChange]:
        """The line's entries, newest first."""


class TraceRepository(Protocol):
    def add_trace(self, token: str, line_id: int, rows: Sequence[TracedRow], now: float) -> None:
        """A `sip` worker's messages of a line, oldest first, for the API process that asked with `token`
        (docs/behaviour.md#line-trace)."""

    def take_trace(self, token: str) -> list[TracedRow]:
        """The rows written under `token`, in the order written, deleted as they are read."""

    def prune_traces(self, before: float) -> None:
        """Delete rows written before `before` (a worker that answered after the asker had read)."""


class ProviderRepository(Protocol):
    """Providers as docs/behaviour.md#providers shows them: the caller's cloud lines and the breakers' states."""

    def save_provider_states(self, states: Sequence[ProviderState], worker: str = "") -> None:
        """Store the breakers' latest states as `worker` ("" for a single process) reports them."""

    def clear_provider_states(self, worker: str = "") -> None:
        """Forget what `worker` reported (its breakers start closed again)."""

    def provider_states(self) -> list[ProviderState]:
        """Every stored state, one per provider and worker."""

    def caller_registrations(self, portal_id: int, app_id: str | None) -> list[tuple[Line, Registration]]:
        """The portal's cloud lines of application `app_id` (None: of every app) with their registrations,
        CONFIG_ID order."""

    def last_errors(self, line_ids: Sequence[int]) -> dict[int, StatusChange]:
        """Each line's newest history entry that is an `error` (lines with none are left out)."""


class DatabaseRepository(Protocol):
    """What a rule may ask of the database itself rather than of a table."""

    # Cache topics this transaction changed beyond those its write named (store/topics.py): the
    # database forgets and, on PostgreSQL, NOTIFYs them too when it commits.
    touched: set[str]

    def ping(self) -> None:
        """Raises when the database cannot be reached."""

    def notify(self, channel: str, payload: str) -> None:
        """PostgreSQL NOTIFY, sent when the transaction commits."""

    def serialise(self, name: str) -> None:
        """Until commit, no other transaction that serialises on `name` runs (an advisory lock on
        PostgreSQL; SQLite's BEGIN IMMEDIATE serialises every writer already)."""


class BindingRepository(Protocol):
    def office_user(self, login: str) -> tuple[OfficeUser, str | None] | None:
        """The office line whose INCOMING_LOGIN this is (its `algorithms` its own, else its portal's), with
        its portal's INCOMING_SERVER if set."""

    def store_ha1(self, line_id: int, realm: str, ha1: dict[str, str]) -> None:
        """Keep the HA1 values of an office line for `realm` (sealed)."""

    def bindings_of(self, line_ids: list[int], *, lock: bool = True) -> dict[int, list[Binding]]:
        """Current bindings per line; with `lock`, the lines locked until commit."""

    def save_bindings(self, changes: dict[int, tuple[list[Binding], list[Binding]]]) -> None:
        """Each line's bindings go from `before` to `after` (line id → (before, after)): the rows of
        bindings gone are deleted, new ones inserted, changed ones updated, by Contact; `before` is
        what the store holds of them (rows it does not name are left alone)."""

    def delete_bindings(self, line_id: int) -> None: ...

    def delete_expired_bindings(self, now: float, line_ids: list[int] | None = None) -> list[tuple[int, Binding]]:
        """Delete the bindings expired by `now` (of these lines only, unless None); returns (line id,
        binding) of each this call deleted."""

    def binding_counts(self, line_ids: list[int], now: float) -> dict[int, tuple[int, int]]:
        """(CONFIG_ID, bindings live at `now`) of each of these lines that exists."""

    def nat_bindings(self, now: float) -> list[tuple[int, Binding]]:
        """(line id, binding) of every live NAT-flagged UDP binding (docs/behaviour.md#office-nat: pinged)."""

    def set_reachable(self, keys: list[tuple[int, str]], reachable: bool) -> None:
        """Set the reachability of the bindings named by (line id, Contact URI)."""

    def connection_closed(self, ip: str, port: int) -> int:
        """Mark the TCP/TLS bindings from this peer unreachable (until the PBX registers again)."""

    def live_bindings_by_transport(self, now: float) -> dict[str, int]:
        """How many bindings of all office lines are live at `now`, by transport ("udp", "tcp", "tls")."""


class EventHandlerRepository(Protocol):
    """Handlers bound with event.bind (docs/behaviour.md#event-bind)."""

    def insert_event_handler(self, new: NewEventHandler) -> EventHandler | None:
        """The new handler; None when the owner has one with the same event, handler and auth_type already.
        Two binds of one portal must not run at once (`serialise`) for that answer to hold."""

    def event_handler(self, handler_id: int) -> EventHandler | None: ...

    def event_handlers(self, portal_id: int, owner: str, auth_type: int | None = None) -> list[EventHandler]:
        """The owner's handlers, oldest first; only those of `auth_type` when it is given."""

    def delete_event_handlers(self, match: HandlerMatch) -> int:
        """Remove the handlers `match` names and their queued deliveries; how many handlers went."""


class EventOfflineRepository(Protocol):
    """The offline event queue (docs/behaviour.md#event-offline)."""

    def insert_offline_event(
        self,
        *,
        portal_id: int,
        owner: str,
        event: str,
        data: str,
        additional: str,
        message_id: str,
        created_at: float,
    ) -> int:
        """A new unmarked record; its id."""

    def mark_offline_events(self, query: OfflineQuery, *, error: bool, limit: int, process_id: str) -> int:
        """Mark up to `limit` unmarked records matching `query` with `error` as given, first in its order,
        with `process_id`; how many. Concurrent callers mark disjoint sets."""

    def offline_events(self, query: OfflineQuery, *, limit: int | None = None, offset: int = 0) -> list[OfflineEvent]:
        """The records matching `query`, in its order (id breaks ties)."""

    def count_offline_events(self, query: OfflineQuery) -> int: ...

    def delete_offline_events(
        self,
        portal_id: int,
        owner: str,
        process_id: str,
        *,
        ids: Sequence[int] | None = None,
        message_ids: Sequence[str] | None = None,
    ) -> int:
        """Remove the records marked with `process_id` (only those with these ids or message ids, when given)."""

    def fail_offline_events(self, portal_id: int, owner: str, process_id: str, message_ids: Sequence[str]) -> int:
        """Set ERROR on these records of `process_id` and unmark them; how many."""


class DeliveryRepository(Protocol):
    """Deliveries of online events, the keys that sign them, the queues' bounds (docs/behaviour.md#event-delivery)."""

    def delivery_due(self, now: float) -> bool:
        """Whether any delivery is due and not leased."""

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
        """Record the outcomes of `worker`'s attempts, then lease it the next due deliveries (in id
        order, one line's to one handler one at a time), up to `slots`, at most `per_handler` in flight
        per handler counting `handler_slots` (in flight now, by handler id)."""

    def signing_key(self, portal_id: int, app_id: int | None) -> str:
        """The app's client secret, else the portal's signing secret (made when first asked for)."""

    def portal_signing_secret(self, portal_id: int) -> str:
        """The portal's signing secret, made when first asked for."""

    def trim_event_queues(self, max_queued: int) -> list[tuple[int, str, int]]:
        """Drop each portal's oldest queued events past `max_queued` (offline first); (portal id, event, dropped)."""

    def queued_events(self) -> dict[str, int]:
        """Events waiting (online and offline) by name, every name present."""

    def handler_states(self, portal_id: int | None) -> list[HandlerState]:
        """Every bound handler (of one portal, unless None) with its queue and failure state."""

    def retry_event_handlers(self, now: float, portal_id: int | None, handler_id: int | None) -> int:
        """Make the queued deliveries of failing handlers (or of one handler) due now; returns how many."""

    def uninstall_app_events(self, app_id: int, now: float) -> int:
        """Queue ONAPPUNINSTALL to the app's handlers of it; remove its handlers and other events."""


class DashboardRepository(Protocol):
    """The web dashboard's links and sessions (docs/behaviour.md#dashboard), by the hashes of their tokens."""

    def insert_dashboard_link(
        self, *, portal_id: int, user_row_id: int, token_hash: str, expires_at: float
    ) -> None: ...

    def take_dashboard_link(self, token_hash: str, portal_id: int, now: float) -> int | None:
        """Marks the link used, once: the user row it signs in, or None."""

    def insert_dashboard_session(self, *, portal_id: int, user_row_id: int, token_hash: str, now: float) -> None: ...

    def dashboard_visit(self, token_hash: str) -> DashboardVisit | None: ...

    def touch_dashboard_session(self, session_id: int, now: float) -> None: ...

    def end_dashboard_sessions(self, *, session_id: int | None = None, portal_id: int | None = None) -> int:
        """One session, or every session and unused link of a portal (None: every portal); how many ended."""

    def forget_dashboard_tokens(self, now: float, idle: float) -> None: ...

    def keep_webhook_code(self, webhook_id: int, code: str) -> None:
        """Seals the code of the first portal's webhook, to print it at every start."""

    def kept_webhook(self, portal_id: int) -> tuple[int, str] | None:
        """The portal's kept webhook while it is live: (user number, code)."""


class Repository(
    AccountRepository,
    AppRepository,
    LineRepository,
    RegistrationRepository,
    DatabaseRepository,
    BindingRepository,
    HistoryRepository,
    TraceRepository,
    ProviderRepository,
    EventHandlerRepository,
    EventOfflineRepository,
    DeliveryRepository,
    DashboardRepository,
    Protocol,
):
    pass
