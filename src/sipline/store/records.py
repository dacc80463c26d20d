"""What the store hands out: immutable records with secrets already decrypted."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import NamedTuple


class LineType(StrEnum):
    CLOUD = "cloud"
    OFFICE = "office"


class StatusResult(StrEnum):
    """STATUS_RESULT of voximplant.sip.status (docs/behaviour.md#sip-status)."""

    WAIT = "wait"
    IN_PROGRESS = "in_progress"
    SUCCESS = "success"
    ERROR = "error"


class Cause(StrEnum):
    """Why a line's history has an entry: what sipline did or saw (docs/behaviour.md#line-history)."""

    REGISTERING = "registering"
    REGISTERED = "registered"
    REFRESHED = "refreshed"
    CHALLENGE_REFUSED = "challenge refused"
    CHALLENGE_UNSUPPORTED = "challenge unsupported"
    TIMEOUT = "timeout"
    DNS = "dns"
    TRANSPORT = "transport"
    TLS = "tls"
    REJECTED = "rejected"
    SERVER_ERROR = "server error"
    ZERO_EXPIRY = "zero expiry"
    TARGET_REFUSED = "target refused"
    LINE_UPDATED = "line updated"
    REGISTER_NOW = "register now"
    RESTARTED = "restarted"
    LEASE_MOVED = "lease moved"
    BINDING_ADDED = "binding added"
    BINDING_REFRESHED = "binding refreshed"
    BINDING_EXPIRED = "binding expired"
    BINDING_REMOVED = "binding removed"
    PROVIDER_DOWN = "provider down"
    PROVIDER_RECOVERED = "provider recovered"


class EventName(StrEnum):
    """The events a handler may bind (docs/behaviour.md#event-names), upper case as Bitrix24 stores and sends them."""

    REGISTRATION_CHANGE = "ONSIPLINEREGISTRATIONCHANGE"  # a cloud line's STATUS_RESULT or STATUS_CODE changed
    BINDING_CHANGE = "ONSIPLINEBINDINGCHANGE"  # an office line's PBX registered, moved, or a binding went
    APP_UNINSTALL = "ONAPPUNINSTALL"  # an application was uninstalled (applications only)


class BreakerState(StrEnum):
    """A provider's breaker (docs/behaviour.md#reg-pacing)."""

    CLOSED = "closed"
    OPEN = "open"
    RECOVERING = "recovering"


@dataclass(frozen=True, slots=True)
class ProviderState:
    """A breaker's state as the store keeps it (docs/behaviour.md#providers)."""

    provider: str  # the next hop, host[:port]
    state: BreakerState
    since: float  # wall clock


@dataclass(frozen=True, slots=True)
class StatusChange:
    """An entry of a line's history (docs/behaviour.md#line-history); office lines' entries name the binding."""

    at: float  # wall clock
    result: StatusResult
    code: int
    message: str
    cause: Cause
    contact: str | None = None
    source: str | None = None  # "ip:port" the PBX registered from
    transport: str | None = None


class TracedRow(NamedTuple):
    """A SIP message of a line's trace as a `sip` worker hands it over (docs/behaviour.md#line-trace), redacted."""

    at: float  # wall clock
    outgoing: bool
    transport: str
    local: str  # host:port
    remote: str
    message: str


@dataclass(frozen=True)
class Portal:
    id: int
    domain: str
    title: str
    member_id: str
    max_cloud_lines: int
    incoming_server: str | None
    default_line: str | None
    free_minutes: int
    paid: bool
    paid_date_end: str | None
    rate_burst: float | None = None  # docs/behaviour.md#rest-rate-limit; None: the service's setting
    rate_drain: float | None = None
    active: bool = True
    digest_algorithms: str | None = (
        None  # docs/behaviour.md#office-digest: its office lines' challenges ("SHA-256,MD5"); None: the service's
    )
    max_lines: int = 1000  # office and cloud lines together (README, settings)


@dataclass(frozen=True)
class User:
    portal_id: int
    number: int  # the ID the portal shows
    name: str
    last_name: str
    is_admin: bool
    can_modify_numbers: bool
    active: bool


@dataclass(frozen=True)
class WebhookGrant:
    """A live webhook and the user it acts as."""

    webhook_id: int
    portal_id: int
    user_number: int
    scopes: frozenset[str]
    expires_at: float | None
    user_active: bool
    can_modify_numbers: bool
    user_is_admin: bool = False


@dataclass(frozen=True)
class WebhookInfo:
    """A webhook as `sipline webhook list` shows it (never its code)."""

    webhook_id: int
    user_number: int
    scopes: str
    created_at: float
    active: bool


@dataclass(frozen=True)
class App:
    """An OAuth application installed on one portal (docs/behaviour.md#rest-oauth-token, docs/behaviour.md#oauth-server, docs/behaviour.md#rest-caller)."""

    id: int
    portal_id: int
    client_id: str
    name: str
    scopes: frozenset[str]
    handler_url: str
    status: str  # L, F, D, T, P
    version: int
    allowed_users: frozenset[int] | None  # None: every user of the portal
    active: bool
    created_at: float


@dataclass(frozen=True)
class TokenGrant:
    """A live access token: its app and the user it acts as."""

    app: App
    user_number: int
    user_active: bool
    user_is_admin: bool
    can_modify_numbers: bool
    expires_at: float


@dataclass(frozen=True)
class Line:
    id: int
    config_id: int
    portal_id: int
    app_id: str
    type: LineType
    title: str
    server: str
    login: str
    password: str | None
    auth_user: str | None
    outbound_proxy: str | None
    detect_line_number: str
    line_detect_header_order: str
    reg_id: int | None
    incoming_login: str | None
    incoming_password: str | None
    registration_status_code: int | None
    registration_error_message: str | None
    # where the office PBX registers; set by the telephony rules from configuration
    incoming_server: str | None = None
    digest_algorithms: str | None = (
        None  # office lines, docs/behaviour.md#office-digest: its challenges; None: the portal's or the service's
    )
    portal_domain: str | None = None  # where a read joins the portal (the registration engine's lines, for its logs)

    @property
    def line_id(self) -> str:
        """The id voximplant.line.* use: reg<REG_ID> for cloud, sip<CONFIG_ID> for office."""
        if self.type is LineType.CLOUD:
            return f"reg{self.reg_id}"
        return f"sip{self.config_id}"


@dataclass(frozen=True)
class LineState:
    """A line as an operator sees it (`sipline line list|show`): a cloud line's registration, an
    office line's live bindings (how many, and the newest REGISTER among them)."""

    line: Line
    portal_domain: str
    registration: Registration | None  # None for office lines
    bindings: int
    last_registered: float | None  # the newest `last_refreshed_at` of the live bindings; None: none


@dataclass(frozen=True)
class NewLine:
    """The values of a line to insert, as the rules above the store decide them (CONFIG_ID from
    `next_config_id`); the row id and REG_ID come from the store."""

    config_id: int
    portal_id: int
    app_id: str
    type: LineType
    title: str
    title_key: str  # what TITLE is unique by within the portal
    server: str
    login: str
    password: str | None
    incoming_login: str | None
    incoming_password: str | None
    registration_status_code: int | None
    digest_algorithms: str | None = None
    # a cloud line's registration (made with the line when set): its first Call-ID and Contact token
    session: NewSession | None = None


@dataclass(frozen=True)
class NewSession:
    call_id: str
    contact_token: str


@dataclass(frozen=True)
class Registration:
    reg_id: int
    line_id: int
    status_result: StatusResult
    status_code: int
    error_message: str
    last_updated: float
    call_id: str = ""
    contact_token: str = ""
    cseq_reserved: int = 0
    registered_contact: str | None = None
    sent_contact: str | None = None
    expires_requested: int = 600


@dataclass(slots=True)  # not frozen: one for every status change written, thousands a second in a burst
class RegistrationUpdate:
    """What the registration engine writes back: status on change, session when it moves on."""

    reg_id: int
    line_id: int
    status_result: StatusResult
    status_code: int
    error_message: str
    last_updated: float
    call_id: str
    cseq_reserved: int
    registered_contact: str | None
    sent_contact: str | None
    expires_requested: int
    # success and error are outcomes: the line's REGISTRATION_* fields follow them (docs/behaviour.md#reg-status)
    outcome: bool
    history: Sequence[StatusChange] = ()  # the line's status changes since the last write, oldest first


@dataclass(slots=True)  # not frozen: made for every REGISTER, and a frozen class costs twice as much to make
class Binding:
    """An office PBX's registration with sipline (docs/behaviour.md#office-stored); a value, never changed once made."""

    contact: str  # the Contact URI as the PBX sent it
    expires_at: float  # wall clock
    granted: int
    call_id: str
    cseq: int
    transport: str
    source: tuple[str, int]
    local: tuple[str, int]
    q: str | None = None
    path: tuple[str, ...] = ()
    instance: str | None = None
    reg_id: int | None = None
    user_agent: str | None = None
    algorithm: str = "MD5"
    nat: bool = False
    reachable: bool = True
    first_registered_at: float = 0.0
    last_refreshed_at: float = 0.0


@dataclass(frozen=True)
class OfficeUser:
    """What the registrar needs of an office line to authenticate its PBX (docs/behaviour.md#office-identity)."""

    line_id: int
    portal_id: int
    login: str  # INCOMING_LOGIN
    password: str  # INCOMING_PASSWORD
    realm: str | None  # the realm `ha1` was computed for
    ha1: dict[str, str]  # digest algorithm → H(login:realm:password)
    algorithms: tuple[str, ...] | None = (
        None  # docs/behaviour.md#office-digest: the line's challenges, else its portal's; None: the service's
    )
    config_id: int = 0  # for the registrar's log lines


@dataclass(frozen=True)
class LeaseRound:
    """What one lease round of a `sip` worker found and did (registration/leases.py)."""

    held: list[int]  # lines whose lease this worker renewed
    acquired: list[int]  # lines it took over (free, or their owner's lease ran out)
    released: list[int]  # lines it gave up so that every worker holds its share
    workers: int  # live workers, this one included


@dataclass(frozen=True)
class DashboardVisit:
    """A dashboard session and the user it signs in (docs/behaviour.md#dashboard)."""

    session_id: int
    portal_id: int
    seen_at: float
    user_number: int
    user_name: str
    is_admin: bool
    can_modify_numbers: bool
    user_active: bool
