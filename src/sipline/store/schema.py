"""The database schema (SQLAlchemy Core). Migrations in migrations/versions build exactly this.

Times are Unix seconds (float). Secrets are stored encrypted (`*_password`, see
crypto.py) or hashed (`code_hash`). `counter` holds the service-wide sequences
that are not row ids (CONFIG_ID, REG_ID), so they work alike on every engine.
"""

import sqlalchemy as sa

metadata = sa.MetaData()

portal = sa.Table(
    "portal",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("domain", sa.String(255), nullable=False, unique=True),
    sa.Column("title", sa.String(255), nullable=False, server_default=""),
    sa.Column("member_id", sa.String(32), nullable=False, unique=True),
    sa.Column("max_cloud_lines", sa.Integer, nullable=False, server_default="10"),
    sa.Column("incoming_server", sa.String(255)),
    # voximplant.line.outgoing.*: NULL means LINK_BASE_NUMBER
    sa.Column("default_line", sa.String(64)),
    sa.Column("free_minutes", sa.Integer, nullable=False, server_default="0"),
    sa.Column("paid", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("paid_date_end", sa.String(32)),
    sa.Column("created_at", sa.Float, nullable=False),
    # docs/behaviour.md#rest-rate-limit: the leaky bucket's X and Y; NULL = the service's setting
    sa.Column("rate_burst", sa.Float),
    sa.Column("rate_drain", sa.Float),
    sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()),  # false: PORTAL_DELETED
    # docs/behaviour.md#office-digest: digest algorithms its office lines are challenged with, e.g. "SHA-256,MD5"; NULL = the service's
    sa.Column("digest_algorithms", sa.String(64)),
    sa.Column("max_lines", sa.Integer, nullable=False, server_default="1000"),  # office and cloud together
    # docs/behaviour.md#event-signature: the key that signs deliveries to webhooks' handlers, sealed; made when first needed
    sa.Column("signing_secret", sa.LargeBinary),
    sqlite_autoincrement=True,
)

# bumped in the transaction of every change sip.get shows of the portal's lines (store/sql_base.py): what
# a shared store's processes check before serving the lines they keep (store/postgres.py). A row of its
# own, not a portal column: a line's delete or status write then waits for no sip.add holding the portal.
lines_version = sa.Table(
    "lines_version",
    metadata,
    sa.Column("portal_id", sa.ForeignKey("portal.id", ondelete="CASCADE"), primary_key=True, autoincrement=False),
    sa.Column("version", sa.BigInteger, nullable=False, server_default="0"),
)

user = sa.Table(
    "user",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("portal_id", sa.ForeignKey("portal.id", ondelete="CASCADE"), nullable=False),
    # the user ID the portal shows (and webhook URLs carry); unique within a portal
    sa.Column("number", sa.Integer, nullable=False),
    sa.Column("name", sa.String(255), nullable=False, server_default=""),
    sa.Column("last_name", sa.String(255), nullable=False, server_default=""),
    sa.Column("is_admin", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("can_modify_numbers", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.UniqueConstraint("portal_id", "number"),
    sqlite_autoincrement=True,
)

webhook = sa.Table(
    "webhook",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("portal_id", sa.ForeignKey("portal.id", ondelete="CASCADE"), nullable=False),
    sa.Column("user_id", sa.ForeignKey("user.id", ondelete="CASCADE"), nullable=False),
    sa.Column("code_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("scopes", sa.String(1024), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("expires_at", sa.Float),
    sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()),
    # the first portal's webhook made by `serve`, sealed, so that every start prints it (docs/behaviour.md#dashboard)
    sa.Column("sealed_code", sa.LargeBinary),
    sqlite_autoincrement=True,
)

# docs/behaviour.md#dashboard: one-time sign-in links and the sessions they start, kept as token hashes
dashboard_link = sa.Table(
    "dashboard_link",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("portal_id", sa.ForeignKey("portal.id", ondelete="CASCADE"), nullable=False),
    sa.Column("user_id", sa.ForeignKey("user.id", ondelete="CASCADE"), nullable=False),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("expires_at", sa.Float, nullable=False),
    sa.Column("used_at", sa.Float),
    sqlite_autoincrement=True,
)

dashboard_session = sa.Table(
    "dashboard_session",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("portal_id", sa.ForeignKey("portal.id", ondelete="CASCADE"), nullable=False),
    sa.Column("user_id", sa.ForeignKey("user.id", ondelete="CASCADE"), nullable=False),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("seen_at", sa.Float, nullable=False),
    sqlite_autoincrement=True,
)

counter = sa.Table(
    "counter",
    metadata,
    sa.Column("name", sa.String(32), primary_key=True),
    sa.Column("value", sa.BigInteger, nullable=False),
)

line = sa.Table(
    "line",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("config_id", sa.Integer, nullable=False, unique=True),
    sa.Column("portal_id", sa.ForeignKey("portal.id", ondelete="CASCADE"), nullable=False),
    sa.Column("app_id", sa.String(128), nullable=False, server_default=""),
    sa.Column("type", sa.String(8), nullable=False),
    sa.Column("title", sa.String(255), nullable=False, server_default=""),
    # trimmed, case-folded TITLE; "" for unnamed lines (which never collide)
    sa.Column("title_key", sa.String(255), nullable=False, server_default=""),
    sa.Column("server", sa.String(255), nullable=False),
    sa.Column("login", sa.String(255), nullable=False),
    sa.Column("password", sa.LargeBinary),
    sa.Column("auth_user", sa.String(255)),
    sa.Column("outbound_proxy", sa.String(255)),
    sa.Column("detect_line_number", sa.String(1), nullable=False, server_default="N"),
    sa.Column("line_detect_header_order", sa.String(32), nullable=False, server_default="diversion;to"),
    sa.Column("incoming_login", sa.String(64)),
    sa.Column("incoming_password", sa.LargeBinary),
    # the realm the sealed HA1 values (incoming_ha1: algorithm → hex, JSON) were computed for (docs/behaviour.md#office-identity)
    sa.Column("incoming_realm", sa.String(255)),
    sa.Column("incoming_ha1", sa.LargeBinary),
    # docs/behaviour.md#office-digest: this office line's digest algorithms, e.g. "SHA-256,MD5"; NULL = its portal's
    sa.Column("digest_algorithms", sa.String(64)),
    sa.Column("registration_status_code", sa.Integer),
    sa.Column("registration_error_message", sa.String(255)),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Index("ix_line_portal_app", "portal_id", "app_id"),
    sa.Index("ix_line_incoming_login", "incoming_login", unique=True),
    sa.Index(
        "ux_line_title",
        "portal_id",
        "title_key",
        unique=True,
        sqlite_where=sa.text("title_key <> ''"),
        postgresql_where=sa.text("title_key <> ''"),
    ),
    sqlite_autoincrement=True,
)

registration = sa.Table(
    "registration",
    metadata,
    sa.Column("reg_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("line_id", sa.ForeignKey("line.id", ondelete="CASCADE"), nullable=False, unique=True),
    sa.Column("status_result", sa.String(16), nullable=False),
    sa.Column("status_code", sa.Integer, nullable=False, server_default="0"),
    sa.Column("error_message", sa.String(255), nullable=False, server_default=""),
    sa.Column("last_updated", sa.Float, nullable=False),
    # the SIP session that survives restarts (docs/behaviour.md#reg-lifecycle)
    sa.Column("call_id", sa.String(64), nullable=False, server_default=""),
    sa.Column("contact_token", sa.String(32), nullable=False, server_default=""),
    # CSeqs below this may have been used; a restarted process continues above it
    sa.Column("cseq_reserved", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("registered_contact", sa.String(255)),
    # the Contact of the last REGISTER sent, stored before it left: a successor retires it too
    sa.Column("sent_contact", sa.String(255)),
    sa.Column("expires_requested", sa.Integer, nullable=False, server_default="600"),
    # scale-out: the `sip` worker that registers the line while its heartbeat is live (leases.py)
    sa.Column("lease_owner", sa.String(64), index=True),
)

sip_worker = sa.Table(
    "sip_worker",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("heartbeat_at", sa.Float, nullable=False),
)

binding = sa.Table(
    "binding",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("line_id", sa.ForeignKey("line.id", ondelete="CASCADE"), nullable=False),
    sa.Column("contact", sa.String(600), nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False),
    sa.Column("granted", sa.Integer, nullable=False),
    sa.Column("call_id", sa.String(255), nullable=False),
    sa.Column("cseq", sa.BigInteger, nullable=False),
    sa.Column("transport", sa.String(8), nullable=False),
    sa.Column("source_ip", sa.String(64), nullable=False),
    sa.Column("source_port", sa.Integer, nullable=False),
    sa.Column("local_ip", sa.String(64), nullable=False),
    sa.Column("local_port", sa.Integer, nullable=False),
    sa.Column("q", sa.String(16)),
    sa.Column("path", sa.Text, nullable=False, server_default=""),  # Path values, one per line
    sa.Column("instance", sa.String(255)),
    sa.Column("reg_id", sa.Integer),
    sa.Column("user_agent", sa.String(255)),
    sa.Column("algorithm", sa.String(32), nullable=False),
    sa.Column("nat", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("reachable", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("first_registered_at", sa.Float, nullable=False),
    sa.Column("last_refreshed_at", sa.Float, nullable=False),
    sa.Index("ix_binding_line", "line_id"),
    sa.Index("ix_binding_expires", "expires_at"),
    sqlite_autoincrement=True,
)

# docs/behaviour.md#line-history: the last HISTORY_KEPT status changes of each line, newest by id
line_history = sa.Table(
    "line_history",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("line_id", sa.ForeignKey("line.id", ondelete="CASCADE"), nullable=False),
    sa.Column("at", sa.Float, nullable=False),
    sa.Column("status_result", sa.String(16), nullable=False),
    sa.Column("status_code", sa.Integer, nullable=False),
    sa.Column("error_message", sa.String(255), nullable=False, server_default=""),
    sa.Column("cause", sa.String(32), nullable=False),
    # office lines: the binding the entry is about
    sa.Column("contact", sa.String(600)),
    sa.Column("source", sa.String(80)),
    sa.Column("transport", sa.String(8)),
    sa.Index("ix_line_history_line", "line_id", "id"),
    sqlite_autoincrement=True,
)

# docs/behaviour.md#line-trace: a `sip` worker's answer to an API process asking for a line's messages, by the
# asker's token; read and deleted within a second (rows a late worker left are pruned after a minute)
line_trace = sa.Table(
    "line_trace",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("token", sa.String(32), nullable=False),
    sa.Column("line_id", sa.Integer, nullable=False),
    sa.Column("at", sa.Float, nullable=False),
    sa.Column("outgoing", sa.Boolean, nullable=False),
    sa.Column("transport", sa.String(8), nullable=False),
    sa.Column("local", sa.String(80), nullable=False),
    sa.Column("remote", sa.String(80), nullable=False),
    sa.Column("message", sa.Text, nullable=False),  # already redacted
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Index("ix_line_trace_token", "token"),
    sqlite_autoincrement=True,
)

# each provider's breaker as the `sip` process(es) last reported it (docs/behaviour.md#providers); one row per
# provider and worker ("" for a single process): a scaled-out worker runs its own breakers
provider_state = sa.Table(
    "provider_state",
    metadata,
    sa.Column("provider", sa.String(300), primary_key=True),
    sa.Column("worker", sa.String(64), primary_key=True, server_default=""),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("since", sa.Float, nullable=False),
    sa.Column("updated", sa.Float, nullable=False),
)

# OAuth applications (docs/behaviour.md#rest-oauth-token, docs/behaviour.md#oauth-server, docs/behaviour.md#rest-caller); secrets, codes and tokens stored as SHA-256 hashes
app = sa.Table(
    "app",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("portal_id", sa.Integer, sa.ForeignKey("portal.id", ondelete="CASCADE"), nullable=False),
    sa.Column("client_id", sa.String(64), nullable=False, unique=True),
    sa.Column("secret_hash", sa.String(64), nullable=False),
    # docs/behaviour.md#event-signature: the client secret, sealed, to sign deliveries; NULL for apps made before 0013
    sa.Column("secret", sa.LargeBinary),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("scopes", sa.String(1024), nullable=False),
    sa.Column("handler_url", sa.String(2048), nullable=False, server_default=""),
    sa.Column("status", sa.String(1), nullable=False, server_default="L"),
    sa.Column("version", sa.Integer, nullable=False, server_default="1"),
    sa.Column("allowed_users", sa.String(1024)),  # comma-separated user numbers; NULL = every user
    sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("created_at", sa.Float, nullable=False),
    sqlite_autoincrement=True,
)

oauth_code = sa.Table(
    "oauth_code",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("code_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("app_id", sa.Integer, sa.ForeignKey("app.id", ondelete="CASCADE"), nullable=False),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("user.id", ondelete="CASCADE"), nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False),
    sqlite_autoincrement=True,
)

oauth_token = sa.Table(
    "oauth_token",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("app_id", sa.Integer, sa.ForeignKey("app.id", ondelete="CASCADE"), nullable=False),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("user.id", ondelete="CASCADE"), nullable=False),
    sa.Column("access_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("refresh_hash", sa.String(64), unique=True),  # NULL once used (refresh tokens rotate)
    sa.Column("access_expires_at", sa.Float, nullable=False),
    sa.Column("refresh_expires_at", sa.Float, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sqlite_autoincrement=True,
)

# docs/behaviour.md#event-bind: handlers bound with event.bind. `owner` is whose lines the handler hears,
# as line.app_id holds it: the binding app's client_id, "" for a portal's webhooks (which share their
# lines). `handler` is "" for an offline binding. The deliverer marks a handler failing (since when, why).
event_handler = sa.Table(
    "event_handler",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("portal_id", sa.ForeignKey("portal.id", ondelete="CASCADE"), nullable=False),
    sa.Column("owner", sa.String(128), nullable=False, server_default=""),
    sa.Column("app_id", sa.ForeignKey("app.id", ondelete="CASCADE")),  # NULL: bound by a webhook
    sa.Column("event", sa.String(64), nullable=False),  # upper case
    sa.Column("handler", sa.String(2048), nullable=False, server_default=""),
    sa.Column("auth_type", sa.Integer, nullable=False, server_default="0"),  # AUTH_TYPE as bound
    sa.Column("user_number", sa.Integer, nullable=False),  # who bound it: whose tokens go with AUTH_TYPE 0
    sa.Column("options", sa.Text, nullable=False, server_default="{}"),  # JSON
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("failing_since", sa.Float),
    sa.Column("last_error", sa.String(255)),
    sa.Column("last_error_at", sa.Float),
    sa.Column("delivered_at", sa.Float),
    sa.UniqueConstraint("portal_id", "owner", "event", "handler", "auth_type"),
    sqlite_autoincrement=True,
)

# docs/behaviour.md#event-delivery: one row per (event, online handler) until delivered or given up. A row
# holds what it needs once `body` is frozen at the first attempt (ONAPPUNINSTALL's outlives its handler);
# `line_id` orders one line's events to one handler (0: not a line's). Claimed by `lease_owner` until
# `lease_until` (several `sip` workers on PostgreSQL: SKIP LOCKED).
event_delivery = sa.Table(
    "event_delivery",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("handler_id", sa.Integer, nullable=False),  # no foreign key: see above
    sa.Column("portal_id", sa.ForeignKey("portal.id", ondelete="CASCADE"), nullable=False),
    sa.Column("app_id", sa.Integer),  # the app whose client secret signs it; NULL: the portal's signing secret
    sa.Column("line_id", sa.Integer, nullable=False, server_default="0"),
    sa.Column("event", sa.String(64), nullable=False),
    sa.Column("data", sa.Text, nullable=False),  # JSON of data[...]
    sa.Column("created_at", sa.Float, nullable=False),  # the change's time: `ts`
    sa.Column("url", sa.String(2048)),
    sa.Column("body", sa.Text),  # the form as first sent; every retry sends it again
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_at", sa.Float, nullable=False),
    sa.Column("last_error", sa.String(255)),
    sa.Column("lease_owner", sa.String(64)),
    sa.Column("lease_until", sa.Float),
    sa.Index("ix_event_delivery_due", "next_at"),
    sa.Index("ix_event_delivery_order", "handler_id", "line_id", "id"),
    sqlite_autoincrement=True,
)

# docs/behaviour.md#event-offline: events for offline bindings, read with event.offline.get; per portal and
# owner, oldest dropped first past the portal's bound
event_offline = sa.Table(
    "event_offline",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("portal_id", sa.ForeignKey("portal.id", ondelete="CASCADE"), nullable=False),
    sa.Column("owner", sa.String(128), nullable=False, server_default=""),
    sa.Column("event", sa.String(64), nullable=False),
    sa.Column("data", sa.Text, nullable=False),  # JSON: EVENT_DATA
    sa.Column("additional", sa.Text, nullable=False, server_default="{}"),  # JSON: EVENT_ADDITIONAL
    sa.Column("message_id", sa.String(32), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),  # TIMESTAMP_X
    sa.Column("process_id", sa.String(32), nullable=False, server_default=""),
    sa.Column("error", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Index("ix_event_offline_owner", "portal_id", "owner", "id"),
    sqlite_autoincrement=True,
)
