"""The `sipline` command: `serve`, and operator commands that act on the same data dir."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Iterable
from dataclasses import replace
from importlib.metadata import version
from typing import Any

from sipline.accounts.portals import AccountError, BadAccountValue
from sipline.cli.output import CommandFailed
from sipline.files import PRIVATE_UMASK
from sipline.server import settings as config
from sipline.server.settings import OPTIONS, ConfigError, Option, Settings, settings_from
from sipline.server.store_opening import NoStore, StoreUnopenable
from sipline.store.crypto import KeyMaterialError
from sipline.store.lock import StoreBusy
from sipline.store.transfer import TransferError

STORE_SETTINGS = ("data_dir", "database_url")  # the flags of every command that opens the store
SCOPE_HELP = "comma-separated Bitrix24 scopes (default telephony, the one whose methods sipline serves)"
# What was asked is wrong: exit 2 with the command's usage (argparse's own errors do the same).
USAGE_ERRORS = (ConfigError, BadAccountValue)
# What was asked cannot be done here and now (not found, exists already, no store, the store in use):
# exit 1 with one line on stderr. `serve` refuses these with its usage and 2, as its bad settings.
RUNTIME_ERRORS = (
    AccountError,
    CommandFailed,
    NoStore,
    StoreUnopenable,
    KeyMaterialError,
    StoreBusy,
    TransferError,
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sipline", description="Bitrix24-compatible SIP connector")
    parser.add_argument("--version", action="version", version=f"sipline {version('sipline')}")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = _command(commands, "serve", "run the HTTP API (and SIP) server")
    _add_settings(serve, (name for name, row in OPTIONS.items() if row.flag is not None))

    _operator_commands(commands)
    _command(commands, "rotate-key", "re-seal every stored secret with a new random key", store=True)
    move = _command(
        commands, "migrate-store", "copy this installation's store to another (e.g. PostgreSQL)", store=True
    )
    move.add_argument("--to", required=True, metavar="URL", help="the new store: postgresql://… (empty database)")
    return parser


def _operator_commands(commands) -> None:
    """Commands that act on the data dir of a (running or stopped) `serve`; each prints its result."""

    def command(group, name: str, help_: str, *, portal: bool = True, listing: bool = False) -> argparse.ArgumentParser:
        parser = _command(group, name, help_, store=True)
        if portal:
            parser.add_argument("--portal", metavar="DOMAIN", help="the portal (default: the first one)")
        if listing:
            parser.add_argument("--json", action="store_true", help="a JSON array of objects with the table's keys")
        return parser

    portal = commands.add_parser("portal", help="manage portals").add_subparsers(dest="action", required=True)
    create = command(portal, "create", "a portal with an admin (user 1) and a telephony webhook", portal=False)
    create.add_argument("--domain", required=True, help="the Host its requests carry")
    create.add_argument("--title", default="")
    create.add_argument("--incoming-server", help="its INCOMING_SERVER (SIP realm); default: the service's")
    create.add_argument("--max-cloud-lines", default="10")
    max_lines = OPTIONS["max_lines"]
    create.add_argument(
        "--max-lines",
        default=max_lines.text(None, os.environ),
        metavar="N",
        help=f"its limit of lines, office and cloud (default: {max_lines.default}; env {max_lines.env})",
    )
    create.add_argument("--rate-limit", metavar="X/Y|off", help="its request-rate limit; default: the service's")
    create.add_argument(
        "--digest-algorithms",
        metavar="LIST",
        help="digest challenges of its office lines, in "
        "order, e.g. SHA-256,MD5; default: the service's --registrar-algorithms",
    )
    command(portal, "list", "a table of portals: domain, member_id, title", portal=False, listing=True)
    limit = command(portal, "limit", "set a portal's request-rate limit or line limit")
    limit.add_argument("--rate-limit", metavar="X/Y|off", help="burst X, Y a second after; off: no limit")
    limit.add_argument("--max-lines", metavar="N", help="its limit of lines, office and cloud")
    command(portal, "digest", "set the digest challenges of a portal's office lines").add_argument(
        "--digest-algorithms",
        metavar="LIST|default",
        required=True,
        help="e.g. SHA-256,MD5 (in order); default: the service's --registrar-algorithms",
    )

    user = commands.add_parser("user", help="manage portal users").add_subparsers(dest="action", required=True)
    create = command(user, "create", "print the ID of a new user")
    create.add_argument("--name", required=True)
    create.add_argument("--admin", action="store_true", help="portal administrator (has every right)")
    create.add_argument("--numbers-modify", action="store_true", help='the "Manage numbers — modify" right')
    for action in ("deactivate", "activate"):
        command(user, action, f"{action} a user").add_argument("--user", required=True, help="user ID")

    webhook = commands.add_parser("webhook", help="manage incoming webhooks").add_subparsers(
        dest="action", required=True
    )
    create = command(webhook, "create", "print the base URL of a new webhook")
    create.add_argument("--user", default="1", help="user ID the webhook acts as (default 1)")
    create.add_argument("--scope", default="telephony", help=SCOPE_HELP)
    command(webhook, "list", "a table of webhooks: ID, user, scopes, state (never the code)", listing=True)
    command(webhook, "revoke", "revoke a webhook").add_argument("--id", required=True, help="webhook ID (from list)")

    app = commands.add_parser("app", help="manage OAuth applications").add_subparsers(dest="action", required=True)
    create = command(app, "create", "register an app on a portal, install it, print its credentials")
    create.add_argument("--name", required=True)
    create.add_argument("--scope", default="telephony", help=SCOPE_HELP)
    create.add_argument("--handler", default="", metavar="URL", help="gets the ONAPPINSTALL hand-off and codes")
    create.add_argument("--users", metavar="ID,ID", help="only these users may use it (default: everyone)")
    command(app, "list", "a table of apps: client_id, name, scopes, state", listing=True)
    authorize = command(
        app, "authorize", "consent for a user without a browser: print a one-time code (30 s) and its fields"
    )
    authorize.add_argument("--client-id", required=True)
    authorize.add_argument("--user", default="1", help="user ID the code is for (default 1)")
    for action in ("uninstall", "install"):
        command(app, action, f"{action} an app", portal=False).add_argument("--client-id", required=True)

    _line_commands(commands)

    link = command(commands, "dashboard-link", "print a one-time sign-in link to the web dashboard (10 minutes)")
    link.set_defaults(action="")
    link.add_argument("--user", default="1", help="user ID the link signs in (default 1, the portal's admin)")
    link.add_argument("--revoke-all", action="store_true", help="end every session and unused link of the portal")

    event = commands.add_parser("event", help="event handlers and their deliveries").add_subparsers(
        dest="action", required=True
    )
    listing = _command(event, "list", "a table of bound handlers: queue, failures, last delivery", store=True)
    listing.add_argument("--portal", metavar="DOMAIN", help="only this portal's handlers (default: every portal's)")
    listing.add_argument("--json", action="store_true", help="a JSON array of objects with the table's keys")
    retry = _command(
        event, "retry", "make the queued deliveries of failing handlers due now; prints how many", store=True
    )
    retry.add_argument("--portal", metavar="DOMAIN", help="only this portal's handlers (default: every portal's)")
    retry.add_argument("--handler", metavar="ID", help="this handler's (failing or not)")
    retry.add_argument("--all", action="store_true", help="every failing handler's")
    command(event, "signing-secret", "print the key that signs deliveries to the portal's webhook-bound handlers")


def _line_commands(commands) -> None:
    """`line list|show`: what the store holds of every portal's lines (cli/lines.py)."""
    from sipline.cli.lines import STATUSES, config_id

    line = commands.add_parser("line", help="show lines and their registrations").add_subparsers(
        dest="action", required=True
    )
    listing = _command(line, "list", "a table of lines with their status (cloud) or bindings (office)", store=True)
    listing.add_argument("--portal", metavar="DOMAIN", help="only this portal's lines (default: every portal's)")
    listing.add_argument("--status", choices=STATUSES, help="only cloud lines with this STATUS_RESULT")
    listing.add_argument("--json", action="store_true", help="a JSON array of objects with the table's keys")
    show = _command(line, "show", "every field of one line, its registration or its bindings", store=True)
    show.add_argument("config_id", type=config_id, metavar="CONFIG_ID")
    show.add_argument("--portal", metavar="DOMAIN", help="the line must be this portal's")
    show.add_argument(
        "--json", action="store_true", help="one JSON object: LINE, REGISTRATION, BINDINGS (, HISTORY, TRACE)"
    )
    show.add_argument(
        "--history", action="store_true", help="also the line's status changes, newest first (sipline.sip.history)"
    )
    show.add_argument(
        "--trace",
        action="store_true",
        help="also the line's last SIP messages (sipline.sip.trace), asked of the running sip processes (PostgreSQL)",
    )


def _command(group, name: str, help_: str, *, store: bool = False) -> argparse.ArgumentParser:
    """A subcommand that reports its usage errors with its own usage line; `store`: it opens the data dir."""
    parser = group.add_parser(name, help=help_)
    parser.set_defaults(command_parser=parser)
    if store:
        _add_settings(parser, STORE_SETTINGS)
    return parser


def _add_settings(parser: argparse.ArgumentParser, names: Iterable[str]) -> None:
    """The flags of these settings (config.py), in the sections the table names. A flag not given is
    None, so that settings_from can tell it from a default and fall back to the environment."""
    sections: dict[str, Any] = {"": parser}  # the parser, then its argument groups
    for name in names:
        row = OPTIONS[name]
        assert row.flag is not None, f"{name} is a setting of the environment only"
        if row.group not in sections:
            sections[row.group] = parser.add_argument_group(row.group)
        sections[row.group].add_argument(
            row.flag, dest=name, help=row.described().replace("%", "%%"), **_flag_shape(row)
        )


def _flag_shape(row: Option) -> dict[str, Any]:
    if row.switch:
        return {"action": "store_const", "const": "1"}
    shape = {"action": "append" if row.many else "store", "metavar": row.metavar, "choices": row.choices}
    return {key: value for key, value in shape.items() if value is not None}


def _store_settings(args: argparse.Namespace) -> Settings:
    return settings_from({name: getattr(args, name) for name in STORE_SETTINGS})


def main(argv: list[str] | None = None) -> int:
    os.umask(PRIVATE_UMASK)  # what sipline creates is its owner's alone (files.py), SQLite's files too
    parser = _parser()
    args, unknown = parser.parse_known_args(argv)
    command_parser = args.command_parser
    if unknown:
        command_parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    try:
        if args.command == "serve":
            return _serve(settings_from(vars(args)), sys.argv[1:] if argv is None else argv)
        if args.command == "migrate-store":
            return _migrate_store(args)
        if args.command == "rotate-key":
            return _rotate_key(args)
        return _offline(args)
    except USAGE_ERRORS as error:
        command_parser.error(str(error))
    except RUNTIME_ERRORS as error:
        if args.command == "serve":  # every refusal at start is about what it was started with
            command_parser.error(str(error))
        print(f"{command_parser.prog}: error: {' '.join(str(error).split())}", file=sys.stderr)
        return 1
    return 2


def _serve(settings: Settings, argv: list[str]) -> int:
    """Run the server; with --workers N, N-1 more copies of this command share its port."""
    from sipline.server.logs import configure
    from sipline.server.workers import PARENT_ENV, metrics_directory, start_workers

    configure(settings.log_level, settings.log_format)
    with metrics_directory(settings.workers) as directory:
        from sipline.server.app import serve  # imports prometheus_client: after the directory is set

        children = start_workers(argv, settings.workers - 1, directory)
        try:
            import uvloop

            reuse_port = bool(children) or PARENT_ENV in os.environ
            uvloop.run(serve(settings, reuse_port=reuse_port, metrics_dir=directory))
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
    from sipline.cli.commands import COMMANDS
    from sipline.server.store_opening import open_database
    from sipline.telephony.services import Services

    settings = _store_settings(args)
    db = open_database(settings, create=False)
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
    from sipline.server.store_opening import open_database
    from sipline.store.crypto import SecretBox, new_key
    from sipline.store.keys import KEY_FILE, KeyFiles

    settings = _store_settings(args)
    db = open_database(settings, exclusive=True, create=False)
    keys = KeyFiles(settings.data_dir, settings.secret_key)
    key = new_key()
    try:
        if keys.leftovers() and not db.check_key():
            raise KeyMaterialError(
                f"{', '.join(map(str, keys.leftovers()))}: left by an earlier rotate-key, and "
                "this store holds no secret to tell whether it needs it; move it away first"
            )
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
    from sipline.server.store_opening import open_database
    from sipline.store.transfer import copy_store

    source_settings = _store_settings(args)
    target_url = config.parse_database_url(args.to, "to")
    if target_url == source_settings.store_url:
        raise ConfigError("to: that is the store being copied")
    source = open_database(source_settings, create=False)
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
