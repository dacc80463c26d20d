"""Who calls the events methods, as the rules need it (the REST layer fills it in from its caller)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EventCaller:
    portal_id: int
    user_number: int
    # whose lines the caller's handlers hear (docs/behaviour.md#line-ownership): an app's client_id, "" for webhooks
    owner: str
    scopes: frozenset[str]
    is_admin: bool
    can_modify_numbers: bool  # "Manage numbers — modify" (docs/behaviour.md#user-rights)
    webhook: bool  # an incoming webhook, not an OAuth application

    @property
    def app(self) -> bool:
        return not self.webhook
