"""OAuth codes and tokens in the store, with a hand clock: lifetimes, one-time use, rotation (docs/behaviour.md#oauth-server, docs/behaviour.md#oauth-rotation)."""

from __future__ import annotations

import asyncio

import pytest

from sipline.accounts.oauth import CODE_LIFETIME, REFRESH_LIFETIME, OAuth, UnknownClient, UnusableGrant, UserRefused
from sipline.accounts.portals import Accounts
from sipline.store.crypto import code_hash

T0 = 1_800_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def setup(db):
    clock = Clock()
    accounts, oauth = Accounts(db, clock), OAuth(db, clock, access_lifetime=60)
    asyncio.run(accounts.bootstrap(domain="portal.example", max_cloud_lines=10))
    portal = asyncio.run(accounts.portal_for_host("portal.example"))
    new = asyncio.run(oauth.create_app(portal=None, name="app", scopes="telephony", handler_url=""))
    return clock, oauth, portal, new


def grant(oauth: OAuth, new, **params: str):
    return asyncio.run(oauth.grant({"client_id": new.app.client_id, "client_secret": new.client_secret, **params}))


def test_a_code_serves_once_and_only_for_30_seconds(setup):
    clock, oauth, portal, new = setup
    code, _ = asyncio.run(oauth.authorize(new.app.client_id, portal, 1))
    late, _ = asyncio.run(oauth.authorize(new.app.client_id, portal, 1))
    tokens = grant(oauth, new, grant_type="authorization_code", code=code)
    assert tokens.expires == int(T0 + 60) and tokens.user_number == 1
    with pytest.raises(UnusableGrant) as used:
        grant(oauth, new, grant_type="authorization_code", code=code)
    assert str(used.value) == "Invalid code"
    clock.now += CODE_LIFETIME
    with pytest.raises(UnusableGrant) as expired:
        grant(oauth, new, grant_type="authorization_code", code=late)
    assert str(expired.value) == "Invalid code"


def test_tokens_are_stored_hashed_and_rotate(setup, db):
    clock, oauth, portal, new = setup
    code, _ = asyncio.run(oauth.authorize(new.app.client_id, portal, 1))
    first = grant(oauth, new, grant_type="authorization_code", code=code)
    found = asyncio.run(oauth.token_grant(first.access_token))
    assert found is not None and found.expires_at == T0 + 60
    assert asyncio.run(db.read(lambda repo: repo.token_grant(first.access_token))) is None  # only the hash is kept
    assert asyncio.run(db.read(lambda repo: repo.token_grant(code_hash(first.access_token)))) is not None

    clock.now += 3600  # the access token is long dead; the refresh token lives 180 days
    second = grant(oauth, new, grant_type="refresh_token", refresh_token=first.refresh_token)
    assert second.expires == int(clock.now + 60)
    with pytest.raises(UnusableGrant):
        grant(oauth, new, grant_type="refresh_token", refresh_token=first.refresh_token)
    clock.now += REFRESH_LIFETIME
    with pytest.raises(UnusableGrant) as expired:
        grant(oauth, new, grant_type="refresh_token", refresh_token=second.refresh_token)
    assert str(expired.value) == "Invalid refresh token"


def test_a_code_of_another_app_is_refused(setup):
    clock, oauth, portal, new = setup
    other = asyncio.run(oauth.create_app(portal=None, name="other", scopes="telephony", handler_url=""))
    code, _ = asyncio.run(oauth.authorize(other.app.client_id, portal, 1))
    with pytest.raises(UnusableGrant) as refused:
        grant(oauth, new, grant_type="authorization_code", code=code)
    assert str(refused.value) == "Invalid code"


def test_a_code_only_for_an_active_user_the_app_allows(setup):
    """docs/behaviour.md#oauth-consent: consent and authorize hold the same rule."""
    clock, oauth, portal, new = setup
    accounts = Accounts(oauth.db, clock)
    clerk = asyncio.run(accounts.create_user(portal=None, name="Clerk", admin=False, numbers_modify=False))
    gone = asyncio.run(accounts.create_user(portal=None, name="Gone", admin=False, numbers_modify=False))
    asyncio.run(accounts.set_user_active(portal=None, user_number=gone, active=False))
    only_clerk = asyncio.run(oauth.create_app(portal=None, name="c", scopes="telephony", handler_url="",
                                              allowed_users=[clerk]))
    for client_id, user, refusal in [(new.app.client_id, 99, UserRefused), (new.app.client_id, gone, UserRefused),
                                     (only_clerk.app.client_id, 1, UserRefused), ("local.nope", 1, UnknownClient),
                                     ("", 1, UnknownClient)]:
        for ask in (oauth.consent, oauth.authorize):
            with pytest.raises(refusal):
                asyncio.run(ask(client_id, portal, user))
    assert asyncio.run(oauth.consent(only_clerk.app.client_id, portal, clerk)).name == "c"
    code, _ = asyncio.run(oauth.authorize(only_clerk.app.client_id, portal, clerk))
    assert grant(oauth, only_clerk, grant_type="authorization_code", code=code).user_number == clerk
    asyncio.run(oauth.set_installed(only_clerk.app.client_id, False))
    with pytest.raises(UnknownClient):
        asyncio.run(oauth.consent(only_clerk.app.client_id, portal, clerk))
