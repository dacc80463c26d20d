"""Who is calling: the identity the REST layer establishes and the rules consume."""

from __future__ import annotations

from dataclasses import dataclass

from sipline.telephony.filter import TermBudget


@dataclass(frozen=True)
class Caller:
    portal_id: int
    user_number: int
    # Ownership key of lines (docs/behaviour.md#line-ownership): an OAuth app's client_id;
    # empty for webhooks, which all share one bucket per portal as in Bitrix24.
    app_id: str
    scopes: frozenset[str]
    can_modify_numbers: bool
    is_admin: bool = False
    webhook_id: int | None = None  # the webhook that called, when it was one
    # what the calls of one batch may still spend together (a batch is bounded in all, not only per call)
    filter_budget: TermBudget | None = None
    # the web dashboard (docs/behaviour.md#dashboard): the portal's lines of every app, as Bitrix24's
    # telephony settings show them; a line it adds is the webhooks' (app_id "")
    every_app: bool = False
    # where the portal is reached (scheme://host[:port]), for an answer that links to its pages
    # (docs/behaviour.md#url-get); the REST endpoint sets it for the methods that do
    portal_base: str = ""

    @property
    def owner(self) -> str | None:
        """The APP_ID whose lines this caller reaches; None: every app's."""
        return None if self.every_app else self.app_id
