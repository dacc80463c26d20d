"""`sipline dashboard-link`: a one-time sign-in link to the web dashboard (docs/behaviour.md#dashboard),
as Jupyter prints a token URL; `--revoke-all` ends every session and unused link instead."""

from __future__ import annotations

import argparse

from sipline.server.addresses import base_url_of, urls_in
from sipline.server.settings import ConfigError, Settings
from sipline.sip.grammar import is_digits
from sipline.telephony.services import Services


async def dashboard_link(args: argparse.Namespace, settings: Settings, services: Services) -> str:
    if args.revoke_all:
        ended = await services.dashboard.revoke_all(portal=args.portal)
        return f"revoked {ended} dashboard sessions"
    if not is_digits(args.user, 18):
        raise ConfigError(f"user: {args.user!r} is not a user ID")
    link = await services.dashboard.new_link(portal=args.portal, user_number=int(args.user))
    if args.portal is None:
        return base_url_of(settings.data_dir, settings.base_url) + link.path
    return urls_in(settings.data_dir, settings).portal_base(link.portal) + link.path
