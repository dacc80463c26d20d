"""The `sipline` command: `serve`, and operator commands that act on the same data dir."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

from sipline import config
from sipline.accounts import AccountError
from sipline.config import ConfigError, Settings, env
from sipline.files import PRIVATE_UMASK
from sipline.sip.transports import admission
from sipline.store.crypto import KeyMaterialError
from sipline.store.lock import StoreBusy
from sipline.store.transfer import TransferError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sipline", description="Bitrix24-compatible SIP connector")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the HTTP API (and SIP) server")
    _data_dir(serve)
    serve.add_argument("--host", default=env("HOST", "127.0.0.1"), help="listen address [SIPLINE_HOST]")
    serve.add_argument("--port", default=env("PORT", "8080"), help="listen port [SIPLINE_PORT]")
    serve.add_argument("--tls", choices=["self-signed"], default=env("TLS"), help="serve HTTPS with a local CA [SIPLINE_TLS]")
    serve.add_argument("--tls-cert", default=env("TLS_CERT"), help="certificate chain (PEM) [SIPLINE_TLS_CERT]")
    serve.add_argument("--tls-key", default=env("TLS_KEY"), help="private key (PEM) [SIPLINE_TLS_KEY]")
    serve.add_argument("--incoming-server", default=env("INCOMING_SERVER"),
                       help="INCOMING_SERVER of office lines [SIPLINE_INCOMING_SERVER]")
    serve.add_argument("--max-cloud-lines", default=env("MAX_CLOUD_LINES", "10"),
                       help="cloud line limit of new portals [SIPLINE_MAX_CLOUD_LINES]")
    serve.add_argument("--access-log", action="store_true", default=None, help="log each request, codes masked")
    serve.add_argument("--log-level", default=env("LOG_LEVEL", "info"), help="debug|info|warning|error")
    serve.add_argument("--http-header-timeout", default=env("HTTP_HEADER_TIMEOUT", "10"), metavar="S",
                       help="seconds for a request's line and headers, and again for its body; later: 408 and "
                            "close [SIPLINE_HTTP_HEADER_TIMEOUT]")
    sip = serve.add_argument_group("SIP")
    sip.add_argument("--sip-listen", action="append", metavar="ADDR:PORT",
                     help="SIP UDP+TCP listen address, repeatable (default 127.0.0.1:5060) [SIPLINE_SIP_LISTEN, comma-separated]")
    sip.add_argument("--sip-public", default=env("SIP_PUBLIC"), metavar="HOST[:PORT]",
                     help="address to put in Via and Contact instead of the listen address [SIPLINE_SIP_PUBLIC]")
    sip.add_argument("--allow-private-targets", action="store_true", default=None,
                     help="let SERVER/OUTBOUND_PROXY lead to addresses that are not globally reachable "
                     "(loopback, private, CGNAT, link-local, ...) [SIPLINE_ALLOW_PRIVATE_TARGETS=1]")
    sip.add_argument("--dns-server", action="append", metavar="ADDR[:PORT]",
                     help="DNS server for SRV/NAPTR/A lookups, repeatable (default: resolv.conf) [SIPLINE_DNS_SERVERS]")
    sip.add_argument("--register-rate", default=env("REGISTER_RATE", "1000"),
                     help="REGISTER transactions per second, all providers [SIPLINE_REGISTER_RATE]")
    sip.add_argument("--provider-rate", default=env("PROVIDER_RATE", "50"),
                     help="new registrations and retries per second per provider host [SIPLINE_PROVIDER_RATE]")
    sip.add_argument("--provider-in-flight", default=env("PROVIDER_IN_FLIGHT", "50"),
                     help="REGISTER transactions in flight per provider host [SIPLINE_PROVIDER_IN_FLIGHT]")
    sip.add_argument("--startup-spread", default=env("STARTUP_SPREAD", "5"),
                     help="spread the first REGISTERs after a start over at least this many seconds [SIPLINE_STARTUP_SPREAD]")
    sip.add_argument("--sip-tls-listen", action="append", metavar="ADDR:PORT",
                     help="SIP TLS listen address for PBXes, repeatable [SIPLINE_SIP_TLS_LISTEN]")
    sip.add_argument("--sip-tls-cert", default=env("SIP_TLS_CERT"), help="its certificate chain; default: the "
                     "HTTPS one, else a local CA's for INCOMING_SERVER [SIPLINE_SIP_TLS_CERT]")
    sip.add_argument("--sip-tls-key", default=env("SIP_TLS_KEY"), help="[SIPLINE_SIP_TLS_KEY]")
    for flag, name, default, text in (
        ("--sip-tcp-per-ip", "SIP_TCP_PER_IP", admission.PER_SOURCE,
         "TCP/TLS connections per source IP (IPv6: /64); 0 = no cap"),
        ("--sip-tcp-max-flows", "SIP_TCP_MAX_FLOWS", admission.MAX_FLOWS,
         "TCP/TLS connections from peers in all; at most the open-file limit less a reserve"),
        ("--sip-tcp-idle-timeout", "SIP_TCP_IDLE_TIMEOUT", admission.IDLE_TIMEOUT,
         "seconds a new connection has to send a SIP message"),
        ("--sip-tcp-lifetime", "SIP_TCP_LIFETIME", admission.LIFETIME,
         "seconds a connection lives without a message; a registered one: past its binding's expiry"),
    ):
        sip.add_argument(flag, default=env(name, f"{default:g}"), metavar="S" if isinstance(default, float) else "N",
                         help=f"{text} [SIPLINE_{name}]")
    scale = serve.add_argument_group("scale-out")
    scale.add_argument("--role", default=env("ROLE", "all"), choices=["all", "api", "sip"],
                       help="api: REST only; sip: registration and registrar only; all: both [SIPLINE_ROLE]")
    scale.add_argument("--workers", default=env("WORKERS", "1"), metavar="N",
                       help="api processes sharing the port (SO_REUSEPORT), this one included [SIPLINE_WORKERS]")
    scale.add_argument("--redis-url", default=env("REDIS_URL"), metavar="URL",
                       help="share the REST limits of all api processes through Redis [SIPLINE_REDIS_URL]")
    scale.add_argument("--lease-time", default=env("LEASE_TIME", "10"), metavar="S",
                       help="seconds a sip worker's lease on a cloud line lasts [SIPLINE_LEASE_TIME]")
    scale.add_argument("--reconcile-interval", default=env("RECONCILE_INTERVAL", "30"), metavar="S",
                       help="seconds between a sip worker's comparisons with the store [SIPLINE_RECONCILE_INTERVAL]")
    rest = serve.add_argument_group("REST limits and OAuth")
    rest.add_argument("--rate-limit", default=env("RATE_LIMIT", "50/2"), metavar="X/Y|off",
                      help="requests per portal and client IP: burst X, Y a second after [SIPLINE_RATE_LIMIT]")
    rest.add_argument("--operating-limit", default=env("OPERATING_LIMIT", "480"), metavar="S|off",
                      help="seconds of one method per app or webhook in 10 minutes [SIPLINE_OPERATING_LIMIT]")
    rest.add_argument("--max-lines", default=env("MAX_LINES", "1000"), metavar="N",
                      help="line limit (office and cloud) of new portals [SIPLINE_MAX_LINES]")
    rest.add_argument("--filter-max-values", default=env("FILTER_MAX_VALUES", "500"), metavar="N",
                      help="values in one FILTER list of voximplant.sip.get [SIPLINE_FILTER_MAX_VALUES]")
    rest.add_argument("--filter-max-terms", default=env("FILTER_MAX_TERMS", "1000"), metavar="N",
                      help="values in all lists of one FILTER [SIPLINE_FILTER_MAX_TERMS]")
    rest.add_argument("--filter-max-batch-terms", default=env("FILTER_MAX_BATCH_TERMS", "5000"), metavar="N",
                      help="FILTER values in all calls of one batch [SIPLINE_FILTER_MAX_BATCH_TERMS]")
    rest.add_argument("--trusted-proxy", action="append", metavar="CIDR",
                      help="proxy whose X-Forwarded-For is believed, repeatable [SIPLINE_TRUSTED_PROXIES]")
    rest.add_argument("--oauth-listen", default=env("OAUTH_LISTEN"), metavar="HOST:PORT",
                      help="also serve the OAuth server on a base URL of its own [SIPLINE_OAUTH_LISTEN]")
    rest.add_argument("--access-token-lifetime", default=env("ACCESS_TOKEN_LIFETIME", "3600"), metavar="S",
                      help="seconds an OAuth access token lives [SIPLINE_ACCESS_TOKEN_LIFETIME]")
    registrar = serve.add_argument_group("office registrar")
    for flag, name, default, text in (
        ("--registrar-min-expires", "REGISTRAR_MIN_EXPIRES", "60", "shorter requests get 423 (B4)"),
        ("--registrar-max-expires", "REGISTRAR_MAX_EXPIRES", "3600", "longer requests are granted this"),
        ("--registrar-default-expires", "REGISTRAR_DEFAULT_EXPIRES", "3600", "granted when none is asked"),
        ("--registrar-max-bindings", "REGISTRAR_MAX_BINDINGS", "3", "Contacts per office line (B5)"),
        ("--registrar-algorithms", "REGISTRAR_ALGORITHMS", "MD5",
         "digest challenges, in order, of lines and portals without their own (B3)"),
        ("--flood-requests", "FLOOD_REQUESTS", "20", "requests per source IP per 2 s before a 5 min block; 0 = off"),
        ("--auth-failures", "AUTH_FAILURES", "5", "failed logins per source IP per 10 min before a block; 0 = off"),
        ("--auth-block", "AUTH_BLOCK", "1800", "seconds of the first block, doubled for each next one in a day"),
        ("--user-failures", "USER_FAILURES", "20", "failed logins per user per 10 min before challenges slow"),
        ("--abuse-table-size", "ABUSE_TABLE_SIZE", "100000",
         "source IPs, usernames and (user, IP) pairs the abuse guard remembers, each"),
    ):
        registrar.add_argument(flag, default=env(name, default), help=f"{text} [SIPLINE_{name}]")

    _operator_commands(commands)
    rotate = commands.add_parser("rotate-key", help="re-seal every stored secret with a new random key")
    _data_dir(rotate)
    move = commands.add_parser("migrate-store", help="copy this installation's store to another (e.g. PostgreSQL)")
    _data_dir(move)
    move.add_argument("--to", required=True, metavar="URL", help="the new store: postgresql://… (empty database)")
    return parser


def _operator_commands(commands) -> None:
    """Commands that act on the data dir of a (running or stopped) `serve`; each prints its result."""

    def command(group, name: str, help_: str, *, portal: bool = True) -> argparse.ArgumentParser:
        parser = group.add_parser(name, help=help_)
        _data_dir(parser)
        if portal:
            parser.add_argument("--portal", metavar="DOMAIN", help="the portal (default: the first one)")
        return parser

    portal = commands.add_parser("portal", help="manage portals").add_subparsers(dest="action", required=True)
    create = command(portal, "create", "a portal with an admin (user 1) and a telephony webhook", portal=False)
    create.add_argument("--domain", required=True, help="the Host its requests carry")
    create.add_argument("--title", default="")
    create.add_argument("--incoming-server", help="its INCOMING_SERVER (SIP realm); default: the service's")
    create.add_argument("--max-cloud-lines", default="10")
    create.add_argument("--max-lines", default=env("MAX_LINES", "1000"), metavar="N",
                        help="its limit of lines, office and cloud [SIPLINE_MAX_LINES]")
    create.add_argument("--rate-limit", metavar="X/Y|off", help="its request-rate limit; default: the service's")
    create.add_argument("--digest-algorithms", metavar="LIST", help="digest challenges of its office lines, in "
                        "order, e.g. SHA-256,MD5; default: the service's --registrar-algorithms")
    command(portal, "list", "one line per portal: domain, member_id, title", portal=False)
    limit = command(portal, "limit", "set a portal's request-rate limit or line limit")
    limit.add_argument("--rate-limit", metavar="X/Y|off", help="burst X, Y a second after; off: no limit")
    limit.add_argument("--max-lines", metavar="N", help="its limit of lines, office and cloud")
    command(portal, "digest", "set the digest challenges of a portal's office lines").add_argument(
        "--digest-algorithms", metavar="LIST|default", required=True,
        help="e.g. SHA-256,MD5 (in order); default: the service's --registrar-algorithms")

    user = commands.add_parser("user", help="manage portal users").add_subparsers(dest="action", required=True)
    create = command(user, "create", "print the ID of a new user")
    create.add_argument("--name", required=True)
    create.add_argument("--admin", action="store_true", help="portal administrator (has every right)")
    create.add_argument("--numbers-modify", action="store_true", help='the "Manage numbers — modify" right')
    for action in ("deactivate", "activate"):
        command(user, action, f"{action} a user").add_argument("--user", required=True, help="user ID")

    webhook = commands.add_parser("webhook", help="manage incoming webhooks").add_subparsers(dest="action",
                                                                                           required=True)
    create = command(webhook, "create", "print the base URL of a new webhook")
    create.add_argument("--user", default="1", help="user ID the webhook acts as (default 1)")
    create.add_argument("--scope", default="telephony", help="comma-separated scopes (default telephony)")
    command(webhook, "list", "one line per webhook: ID, user, scopes, state (never the code)")
    command(webhook, "revoke", "revoke a webhook").add_argument("--id", required=True, help="webhook ID (from list)")

    app = commands.add_parser("app", help="manage OAuth applications").add_subparsers(dest="action", required=True)
    create = command(app, "create", "register an app on a portal, install it, print its credentials")
    create.add_argument("--name", required=True)
    create.add_argument("--scope", default="telephony", help="comma-separated scopes (default telephony)")
    create.add_argument("--handler", default="", metavar="URL", help="gets the ONAPPINSTALL hand-off and codes")
    create.add_argument("--users", metavar="ID,ID", help="only these users may use it (default: everyone)")
    command(app, "list", "one line per app: client_id, name, scopes, state")
    for action in ("uninstall", "install"):
        command(app, action, f"{action} an app", portal=False).add_argument("--client-id", required=True)


def _data_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", default=env("DATA_DIR", "sipline-data"), help="[SIPLINE_DATA_DIR]")
    parser.add_argument("--database-url", default=env("DATABASE_URL"), metavar="URL",
                        help="sqlite:///FILE or postgresql://… (default: SQLite in the data dir) "
                             "[SIPLINE_DATABASE_URL]")


def settings_from(args: argparse.Namespace) -> Settings:
    """Raises: ConfigError naming the first bad setting."""
    return config.check(
        Settings(
            host=args.host,
            port=config.parse_port(args.port),
            data_dir=Path(args.data_dir),
            tls_cert=Path(args.tls_cert) if args.tls_cert else None,
            tls_key=Path(args.tls_key) if args.tls_key else None,
            tls_self_signed=args.tls == "self-signed",
            incoming_server=args.incoming_server or None,
            max_cloud_lines=config.parse_positive(args.max_cloud_lines, "max-cloud-lines"),
            secret_key=env("SECRET_KEY"),
            access_log=bool(args.access_log) or config.parse_flag(env("ACCESS_LOG", "0"), "SIPLINE_ACCESS_LOG"),
            log_level=args.log_level.lower(),
            http_header_timeout=config.parse_rate(args.http_header_timeout, "http-header-timeout"),
            sip_listen=_listen(args.sip_listen or _env_list("SIP_LISTEN") or ["127.0.0.1:5060"]),
            sip_public=config.parse_hostport(args.sip_public, "sip-public", 5060) if args.sip_public else None,
            allow_private_targets=bool(args.allow_private_targets)
            or config.parse_flag(env("ALLOW_PRIVATE_TARGETS", "0"), "SIPLINE_ALLOW_PRIVATE_TARGETS"),
            dns_servers=tuple(config.parse_hostport(item, "dns-server", 53)
                              for item in args.dns_server or _env_list("DNS_SERVERS")) or None,
            register_rate=config.parse_rate(args.register_rate, "register-rate"),
            provider_rate=config.parse_rate(args.provider_rate, "provider-rate"),
            provider_in_flight=config.parse_positive(args.provider_in_flight, "provider-in-flight"),
            startup_spread=config.parse_rate(args.startup_spread, "startup-spread"),
            sip_tls_listen=_listen(args.sip_tls_listen or _env_list("SIP_TLS_LISTEN")),
            sip_tls_cert=Path(args.sip_tls_cert) if args.sip_tls_cert else None,
            sip_tls_key=Path(args.sip_tls_key) if args.sip_tls_key else None,
            registrar_min_expires=config.parse_positive(args.registrar_min_expires, "registrar-min-expires"),
            registrar_max_expires=config.parse_positive(args.registrar_max_expires, "registrar-max-expires"),
            registrar_default_expires=config.parse_positive(args.registrar_default_expires, "registrar-default-expires"),
            registrar_max_bindings=config.parse_positive(args.registrar_max_bindings, "registrar-max-bindings"),
            registrar_algorithms=config.parse_algorithms(args.registrar_algorithms, "registrar-algorithms"),
            flood_requests=config.parse_count(args.flood_requests, "flood-requests"),
            auth_failures=config.parse_count(args.auth_failures, "auth-failures"),
            auth_block=config.parse_rate(args.auth_block, "auth-block"),
            user_failures=config.parse_positive(args.user_failures, "user-failures"),
            abuse_table_size=config.parse_positive(args.abuse_table_size, "abuse-table-size"),
            time_scale=config.parse_rate(env("TIME_SCALE", "1"), "SIPLINE_TIME_SCALE"),
            rate_limit=config.parse_rate_limit(args.rate_limit, "rate-limit"),
            operating_limit=config.parse_limit(args.operating_limit, "operating-limit"),
            max_lines=config.parse_positive(args.max_lines, "max-lines"),
            filter_max_values=config.parse_positive(args.filter_max_values, "filter-max-values"),
            filter_max_terms=config.parse_positive(args.filter_max_terms, "filter-max-terms"),
            filter_max_batch_terms=config.parse_positive(args.filter_max_batch_terms, "filter-max-batch-terms"),
            trusted_proxies=tuple(config.parse_network(item, "trusted-proxy")
                                  for item in args.trusted_proxy or _env_list("TRUSTED_PROXIES")),
            oauth_listen=config.parse_hostport(args.oauth_listen, "oauth-listen") if args.oauth_listen else None,
            access_token_lifetime=config.parse_rate(args.access_token_lifetime, "access-token-lifetime"),
            database_url=args.database_url or None,
            role=args.role,
            redis_url=args.redis_url or None,
            lease_time=config.parse_rate(args.lease_time, "lease-time"),
            reconcile_interval=config.parse_rate(args.reconcile_interval, "reconcile-interval"),
            workers=config.parse_positive(args.workers, "workers"),
            sip_tcp_per_ip=config.parse_count(args.sip_tcp_per_ip, "sip-tcp-per-ip"),
            sip_tcp_max_flows=config.parse_positive(args.sip_tcp_max_flows, "sip-tcp-max-flows"),
            sip_tcp_idle_timeout=config.parse_rate(args.sip_tcp_idle_timeout, "sip-tcp-idle-timeout"),
            sip_tcp_lifetime=config.parse_rate(args.sip_tcp_lifetime, "sip-tcp-lifetime"),
        )
    )


def _env_list(name: str) -> list[str]:
    return [item for item in (env(name) or "").split(",") if item.strip()]


def _listen(items: list[str]) -> tuple[tuple[str, int], ...]:
    addresses = tuple(config.parse_hostport(item, "sip-listen") for item in items)
    for host, _ in addresses:
        if not config.is_ip(host):
            raise ConfigError(f"sip-listen: {host!r} is not an IP address")
    return addresses


def main(argv: list[str] | None = None) -> int:
    os.umask(PRIVATE_UMASK)  # what sipline creates is its owner's alone (files.py), SQLite's files too
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "serve":
            return _serve(settings_from(args), sys.argv[1:] if argv is None else argv)
        if args.command == "migrate-store":
            return _migrate_store(args)
        if args.command == "rotate-key":
            return _rotate_key(args)
        return _offline(args)
    except (ConfigError, AccountError, KeyMaterialError, StoreBusy, TransferError) as error:
        parser.error(str(error))
    return 2


def _serve(settings: Settings, argv: list[str]) -> int:
    """Run the server; with --workers N, N-1 more copies of this command share its port."""
    from sipline.app import PARENT_ENV, serve

    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    children = [subprocess.Popen([sys.executable, "-m", "sipline", *argv, "--workers", "1"],
                                 env={**os.environ, PARENT_ENV: str(os.getpid())})
                for _ in range(settings.workers - 1)]
    try:
        import uvloop

        uvloop.run(serve(settings, reuse_port=bool(children) or PARENT_ENV in os.environ))
    except KeyboardInterrupt:
        pass
    finally:
        for child in children:
            child.terminate()
        for child in children:
            child.wait(30)
    return 0


def _offline(args: argparse.Namespace) -> int:
    """Run an operator command against the data dir; a running server sees the change at once."""
    from sipline.app import open_database
    from sipline.commands import COMMANDS
    from sipline.services import Services

    settings = config.check(Settings(data_dir=Path(args.data_dir), secret_key=env("SECRET_KEY"),
                                     database_url=args.database_url or None))
    db = open_database(settings)
    try:
        services = Services.build(db, incoming_server=settings.registrar_name)
        print(asyncio.run(COMMANDS[args.command, args.action](args, settings, services)))
    finally:
        db.close()
    return 0


def _rotate_key(args: argparse.Namespace) -> int:
    """Re-seal every stored secret under a new random key; refused while any other sipline process
    has the store open. A kill at any point leaves a store that the next start opens (store/keys.py).
    With SIPLINE_SECRET_KEY the operator installs the new key (printed path) on every process."""
    from sipline.app import open_database
    from sipline.store.crypto import SecretBox, new_key
    from sipline.store.keys import KEY_FILE, KeyFiles

    settings = config.check(Settings(data_dir=Path(args.data_dir), secret_key=env("SECRET_KEY"),
                                     database_url=args.database_url or None))
    db = open_database(settings, exclusive=True)
    keys = KeyFiles(settings.data_dir, settings.secret_key)
    key = new_key()
    try:
        if keys.leftovers() and not db.check_key():
            raise KeyMaterialError(f"{', '.join(map(str, keys.leftovers()))}: left by an earlier rotate-key, and "
                                   "this store holds no secret to tell whether it needs it; move it away first")
        with keys.locked():
            pending = keys.write_pending(key)
            count = asyncio.run(db.write(lambda repo: repo.reseal(SecretBox(key))))
            db.sync()  # the old key goes next: the commit must outlast a power loss
            if not settings.secret_key:
                keys.promote()
    finally:
        db.close()
    if settings.secret_key:
        print(f"resealed {count} secrets; set SIPLINE_SECRET_KEY on every process to the base64 of {pending}")
    else:
        print(f"resealed {count} secrets; new key in {settings.data_dir / KEY_FILE}")
    return 0


def _migrate_store(args: argparse.Namespace) -> int:
    """Copy the store of --data-dir/--database-url to --to; prints rows per table."""
    from sipline.app import open_database
    from sipline.store.transfer import copy_store

    source_settings = config.check(Settings(data_dir=Path(args.data_dir), secret_key=env("SECRET_KEY"),
                                            database_url=args.database_url or None))
    target_url = config.parse_database_url(args.to, "to")
    if target_url == source_settings.store_url:
        raise ConfigError("to: that is the store being copied")
    source = open_database(source_settings)
    try:
        target = open_database(replace(source_settings, database_url=target_url))
        try:
            copied = copy_store(source, target)
        finally:
            target.close()
    finally:
        source.close()
    print("\n".join(f"{table}: {count}" for table, count in copied.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
