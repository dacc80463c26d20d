"""Operator commands (`sipline portal|user|webhook|app …`): what each does and prints.

They run in their own process against the data dir; a running `serve` sees their
changes at once (it re-reads what the store changed). Outputs are one value per
line, `key: value` where there is more than one; lists are tables under a header
row, or JSON with the same keys (`--json`: what scripts should read).
"""

from __future__ import annotations

import argparse
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from sipline.accounts.oauth import UnknownClient, UserRefused
from sipline.cli.dashboard import dashboard_link
from sipline.cli.events import event_list, event_retry, event_signing_secret
from sipline.cli.lines import line_list, line_show
from sipline.cli.output import CommandFailed, Table
from sipline.rest.oauth_server import Urls
from sipline.server import settings as config
from sipline.server.addresses import base_url_of, urls_in
from sipline.server.settings import ConfigError, Settings
from sipline.sip.grammar import is_digits
from sipline.telephony.services import Services

Command = Callable[[argparse.Namespace, Settings, Services], Coroutine[Any, Any, object]]
HANDLER_TIMEOUT = 10.0


def _user_id(text: str) -> int:
    if not is_digits(text, 18):
        raise ConfigError(f"user: {text!r} is not a user ID")
    return int(text)


async def portal_create(args: argparse.Namespace, settings: Settings, services: Services) -> str:
    algorithms = _digest_algorithms(args) if args.digest_algorithms else None  # checked before anything is made
    created = await services.accounts.create_portal(
        domain=args.domain,
        title=args.title,
        incoming_server=args.incoming_server,
        max_cloud_lines=config.parse_positive(args.max_cloud_lines, "max-cloud-lines"),
        max_lines=config.parse_positive(args.max_lines, "max-lines"),
    )
    if args.rate_limit:
        await services.accounts.set_rate_limit(
            created.portal.domain, config.parse_rate_limit(args.rate_limit, "rate-limit")
        )
    if algorithms:
        await services.accounts.set_digest_algorithms(created.portal.domain, algorithms)
    base = urls_in(settings.data_dir, settings).portal_base(created.portal)
    return f"portal: {created.portal.domain}\nmember_id: {created.portal.member_id}\nwebhook: {base}{created.path}"


async def portal_limit(args: argparse.Namespace, settings: Settings, services: Services) -> str:
    if args.rate_limit is None and args.max_lines is None:
        raise ConfigError("portal limit: give --rate-limit, --max-lines or both")
    done = []
    if args.rate_limit is not None:
        await services.accounts.set_rate_limit(args.portal, config.parse_rate_limit(args.rate_limit, "rate-limit"))
        done.append(f"rate limit {args.rate_limit}")
    if args.max_lines is not None:
        await services.accounts.set_line_limit(args.portal, config.parse_positive(args.max_lines, "max-lines"))
        done.append(f"max lines {args.max_lines}")
    return "\n".join(done)


async def portal_digest(args: argparse.Namespace, settings: Settings, services: Services) -> str:
    await services.accounts.set_digest_algorithms(args.portal, _digest_algorithms(args))
    return f"digest algorithms {args.digest_algorithms}"


def _digest_algorithms(args: argparse.Namespace) -> tuple[str, ...] | None:
    """docs/behaviour.md#office-digest: a list such as SHA-256,MD5, or `default` for the service's --registrar-algorithms."""
    if args.digest_algorithms.strip().lower() == "default":
        return None
    return config.parse_algorithms(args.digest_algorithms, "digest-algorithms")


async def portal_list(args: argparse.Namespace, settings: Settings, services: Services) -> str:
    rows = [{"DOMAIN": p.domain, "MEMBER_ID": p.member_id, "TITLE": p.title} for p in await services.accounts.portals()]
    return Table(("DOMAIN", "MEMBER_ID", "TITLE"), rows).render(args.json)


async def user_create(args: argparse.Namespace, settings: Settings, services: Services) -> int:
    return await services.accounts.create_user(
        portal=args.portal, name=args.name, admin=args.admin, numbers_modify=args.numbers_modify
    )


def _user_active(active: bool) -> Command:
    async def run(args: argparse.Namespace, settings: Settings, services: Services) -> str:
        await services.accounts.set_user_active(portal=args.portal, user_number=_user_id(args.user), active=active)
        return f"user {args.user} {'active' if active else 'inactive'}"

    return run


async def webhook_create(args: argparse.Namespace, settings: Settings, services: Services) -> str:
    hook = await services.accounts.create_webhook(
        portal=args.portal, user_number=_user_id(args.user), scopes=args.scope
    )
    if args.portal is None:
        return base_url_of(settings.data_dir, settings.base_url) + hook.path
    return urls_in(settings.data_dir, settings).portal_base(hook.portal) + hook.path


async def webhook_list(args: argparse.Namespace, settings: Settings, services: Services) -> str:
    rows = [
        {
            "ID": hook.webhook_id,
            "USER": hook.user_number,
            "SCOPE": hook.scopes,
            "STATE": "active" if hook.active else "revoked",
            "CREATED": _iso(hook.created_at),
        }
        for hook in await services.accounts.webhooks(portal=args.portal)
    ]
    return Table(("ID", "USER", "SCOPE", "STATE", "CREATED"), rows).render(args.json)


async def webhook_revoke(args: argparse.Namespace, settings: Settings, services: Services) -> str:
    if not is_digits(args.id, 18):
        raise ConfigError(f"id: {args.id!r} is not a webhook ID")
    await services.accounts.revoke_webhook(portal=args.portal, webhook_id=int(args.id))
    return f"webhook {args.id} revoked"


async def app_create(args: argparse.Namespace, settings: Settings, services: Services) -> str:
    users = [_user_id(item.strip()) for item in args.users.split(",")] if args.users else None
    new = await services.oauth.create_app(
        portal=args.portal, name=args.name, scopes=args.scope, handler_url=args.handler, allowed_users=users
    )
    installed = "yes (no handler)"
    if args.handler:
        tokens = await services.oauth.install_tokens(new.app.client_id)
        try:
            installed = _hand_off(args.handler, urls_in(settings.data_dir, settings), tokens)
        except CommandFailed:
            await services.oauth.discard_app(new.app.client_id)  # docs/behaviour.md#oauth-apps: not installed
            raise
    return f"client_id: {new.app.client_id}\nclient_secret: {new.client_secret}\ninstalled: {installed}"


def _hand_off(handler: str, urls: Urls, tokens) -> str:
    """docs/behaviour.md#oauth-server: POST the ONAPPINSTALL event, form-encoded, to the app's handler.

    Raises: CommandFailed when the handler cannot be reached or does not answer 2xx."""
    auth = urls.token_fields(tokens) | {"domain": tokens.portal.domain, "application_token": tokens.app.client_id}
    form = {
        "event": "ONAPPINSTALL",
        "data[VERSION]": str(tokens.app.version),
        "data[ACTIVE]": "Y",
        "data[INSTALLED]": "Y",
        "data[LANGUAGE_ID]": "en",
        "ts": str(int(time.time())),
    }
    form |= {f"auth[{name}]": str(value) for name, value in auth.items()}
    request = urllib.request.Request(
        handler,
        data=urlencode(form).encode(),
        method="POST",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    try:
        with urllib.request.urlopen(request, timeout=HANDLER_TIMEOUT) as answer:
            return f"yes (handler answered {answer.status})"
    except urllib.error.HTTPError as error:
        why = f"answered {error.code}"
    except (urllib.error.URLError, OSError, ValueError) as error:
        why = f"is unreachable ({getattr(error, 'reason', error)})"
    raise CommandFailed(f"the handler {handler} {why}: the app was not installed, nothing was kept")


async def app_list(args: argparse.Namespace, settings: Settings, services: Services) -> str:
    rows = [
        {
            "CLIENT_ID": app.client_id,
            "NAME": app.name,
            "SCOPE": ",".join(sorted(app.scopes)),
            "STATE": "installed" if app.active else "uninstalled",
        }
        for app in await services.oauth.apps(portal=args.portal)
    ]
    return Table(("CLIENT_ID", "NAME", "SCOPE", "STATE"), rows).render(args.json)


async def app_authorize(args: argparse.Namespace, settings: Settings, services: Services) -> str:
    """docs/behaviour.md#oauth-consent without a browser: the operator consents for a user. The
    code's fields are printed (those of the handler's query but `state`); nothing is sent to the handler."""
    user = _user_id(args.user)
    portal = await services.accounts.named_portal(args.portal)
    try:
        code, app = await services.oauth.authorize(args.client_id, portal, user)
    except UnknownClient:
        raise CommandFailed(f"no app {args.client_id} is installed on portal {portal.domain}") from None
    except UserRefused as refused:
        raise CommandFailed(f"user {user} cannot authorize {args.client_id}: {refused}") from None
    fields = urls_in(settings.data_dir, settings).code_fields(code, app, portal, state="")
    return "\n".join(f"{name}: {value}" for name, value in fields.items() if name != "state")


def _app_installed(installed: bool) -> Command:
    async def run(args: argparse.Namespace, settings: Settings, services: Services) -> str:
        await services.oauth.set_installed(args.client_id, installed)
        return f"app {args.client_id} {'installed' if installed else 'uninstalled'}"

    return run


def _iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).isoformat(timespec="seconds")


COMMANDS: dict[tuple[str, str], Command] = {
    ("dashboard-link", ""): dashboard_link,
    ("line", "list"): line_list,
    ("line", "show"): line_show,
    ("event", "list"): event_list,
    ("event", "retry"): event_retry,
    ("event", "signing-secret"): event_signing_secret,
    ("portal", "create"): portal_create,
    ("portal", "list"): portal_list,
    ("portal", "limit"): portal_limit,
    ("portal", "digest"): portal_digest,
    ("user", "create"): user_create,
    ("user", "deactivate"): _user_active(False),
    ("user", "activate"): _user_active(True),
    ("webhook", "create"): webhook_create,
    ("webhook", "list"): webhook_list,
    ("webhook", "revoke"): webhook_revoke,
    ("app", "create"): app_create,
    ("app", "list"): app_list,
    ("app", "authorize"): app_authorize,
    ("app", "uninstall"): _app_installed(False),
    ("app", "install"): _app_installed(True),
}
