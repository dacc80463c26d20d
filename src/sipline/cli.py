"""The `sipline` command: `serve`, and operator commands that act on the same data dir."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

from sipline import config
from sipline.accounts import AccountError
from sipline.config import ConfigError, Settings, env
from sipline.store.crypto import KeyMaterialError


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

    webhook = commands.add_parser("webhook", help="manage incoming webhooks")
    webhook_commands = webhook.add_subparsers(dest="action", required=True)
    create = webhook_commands.add_parser("create", help="print the base URL of a new webhook")
    _data_dir(create)
    create.add_argument("--user", default="1", help="user ID the webhook acts as (default 1)")
    create.add_argument("--scope", default="telephony", help="comma-separated scopes (default telephony)")

    user = commands.add_parser("user", help="manage portal users")
    user_commands = user.add_subparsers(dest="action", required=True)
    user_create = user_commands.add_parser("create", help="print the ID of a new user")
    _data_dir(user_create)
    user_create.add_argument("--name", required=True)
    user_create.add_argument("--admin", action="store_true", help="portal administrator (has every right)")
    user_create.add_argument("--numbers-modify", action="store_true", help='the "Manage numbers — modify" right')
    return parser


def _data_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", default=env("DATA_DIR", "sipline-data"), help="[SIPLINE_DATA_DIR]")


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
        )
    )


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "serve":
            return _serve(settings_from(args))
        if args.command == "user":
            return _offline(args, _user_create)
        return _offline(args, _webhook_create)
    except (ConfigError, AccountError, KeyMaterialError) as error:
        parser.error(str(error))
    return 2


def _serve(settings: Settings) -> int:
    from sipline.app import serve

    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        import uvloop

        uvloop.run(serve(settings))
    except KeyboardInterrupt:
        pass
    return 0


def _offline(args: argparse.Namespace, command) -> int:
    """Run an operator command against the data dir; a running server sees the change at once."""
    from sipline.app import open_database
    from sipline.services import Services

    settings = config.check(Settings(data_dir=Path(args.data_dir), secret_key=env("SECRET_KEY")))
    db = open_database(settings)
    try:
        services = Services.build(db, incoming_server=settings.registrar_name)
        print(asyncio.run(command(args, settings, services)))
    finally:
        db.close()
    return 0


async def _webhook_create(args: argparse.Namespace, settings: Settings, services) -> str:
    from sipline.app import base_url_of

    if not args.user.isdigit():
        raise ConfigError(f"user: {args.user!r} is not a user ID")
    hook = await services.accounts.create_webhook(user_number=int(args.user), scopes=args.scope)
    return base_url_of(settings.data_dir, settings.base_url) + hook.path


async def _user_create(args: argparse.Namespace, settings: Settings, services) -> int:
    return await services.accounts.create_user(name=args.name, admin=args.admin, numbers_modify=args.numbers_modify)


if __name__ == "__main__":
    sys.exit(main())
