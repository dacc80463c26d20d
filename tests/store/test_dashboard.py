"""Dashboard sign-in links and sessions in the store, with a hand clock (docs/behaviour.md#dashboard-sign-in):
a link works once, within 10 minutes, at its own portal; a session ends idle, signed out, revoked, or with
its user; the first portal's webhook is kept to be printed at every start."""

from __future__ import annotations

import asyncio

import pytest

from sipline.accounts.dashboard import LINK_LIFETIME, Dashboard, csrf_matches
from sipline.accounts.portals import AccountNotFound, Accounts

T0 = 1_800_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def setup(db):
    clock = Clock()
    accounts = Accounts(db, clock)
    first = asyncio.run(accounts.bootstrap(domain="portal.example", max_cloud_lines=10))
    asyncio.run(accounts.create_portal(domain="b.example", title="B", max_cloud_lines=10))
    portal = asyncio.run(accounts.portal_for_host("portal.example"))
    other = asyncio.run(accounts.portal_for_host("b.example"))
    return clock, accounts, Dashboard(db, idle=3600, clock=clock), portal, other, first


def run(coroutine):
    return asyncio.run(coroutine)


def test_a_link_signs_in_once_and_only_within_ten_minutes(setup):
    clock, _, dashboard, portal, _, _ = setup
    link, late = (run(dashboard.new_link(portal=None, user_number=1)) for _ in range(2))
    session = run(dashboard.sign_in(link.token, portal))
    assert session is not None and run(dashboard.sign_in(link.token, portal)) is None
    visitor = run(dashboard.visitor(session, portal))
    assert visitor is not None and visitor.user_number == 1 and visitor.is_admin and visitor.is_operator
    clock.now += LINK_LIFETIME
    assert run(dashboard.sign_in(late.token, portal)) is None
    assert run(dashboard.sign_in("", portal)) is None and run(dashboard.sign_in("nothing", portal)) is None


def test_a_link_and_a_session_count_only_at_their_own_portal(setup):
    _, _, dashboard, portal, other, _ = setup
    link = run(dashboard.new_link(portal="b.example", user_number=1))
    assert run(dashboard.sign_in(link.token, portal)) is None  # refused here, and not used up by it
    session = run(dashboard.sign_in(link.token, other))
    assert session is not None and run(dashboard.visitor(session, portal)) is None
    visitor = run(dashboard.visitor(session, other))
    assert visitor is not None and visitor.is_admin and not visitor.is_operator  # not the first portal's


def test_a_session_ends_idle_signed_out_revoked_or_with_its_user(setup):
    clock, accounts, dashboard, portal, _, _ = setup

    def signed_in(user: int = 1) -> str:
        session = run(dashboard.sign_in(run(dashboard.new_link(portal=None, user_number=user)).token, portal))
        assert session is not None
        return session

    idle = signed_in()
    clock.now += 3000
    assert run(dashboard.visitor(idle, portal)) is not None  # used: its idle time starts again
    clock.now += 3000
    assert run(dashboard.visitor(idle, portal)) is not None
    clock.now += 3600
    assert run(dashboard.visitor(idle, portal)) is None

    out = signed_in()
    run(dashboard.sign_out(run(dashboard.visitor(out, portal))))
    assert run(dashboard.visitor(out, portal)) is None

    revoked, unused = signed_in(), run(dashboard.new_link(portal=None, user_number=1))
    assert run(dashboard.revoke_all(portal=None)) == 1
    assert run(dashboard.visitor(revoked, portal)) is None and run(dashboard.sign_in(unused.token, portal)) is None

    number = run(accounts.create_user(portal=None, name="Clerk", admin=False, numbers_modify=False))
    clerk = signed_in(number)
    seen = run(dashboard.visitor(clerk, portal))
    assert seen is not None and not seen.sees_telephony and not seen.is_admin
    run(accounts.set_user_active(portal=None, user_number=number, active=False))
    assert run(dashboard.visitor(clerk, portal)) is None
    with pytest.raises(AccountNotFound):
        run(dashboard.new_link(portal=None, user_number=number))
    with pytest.raises(AccountNotFound):
        run(dashboard.new_link(portal=None, user_number=99))


def test_the_csrf_token_is_the_sessions_own(setup):
    _, _, dashboard, portal, _, _ = setup
    one, two = (run(dashboard.sign_in(run(dashboard.new_link(portal=None, user_number=1)).token, portal))
                for _ in range(2))
    first, second = run(dashboard.visitor(one, portal)), run(dashboard.visitor(two, portal))
    assert csrf_matches(first, first.csrf_token) and not csrf_matches(first, second.csrf_token)
    assert not csrf_matches(first, None) and not csrf_matches(first, "")


def test_the_first_portals_webhook_is_given_at_every_start_while_it_is_live(setup):
    _, accounts, _, _, _, first = setup
    again = run(accounts.bootstrap(domain="portal.example", max_cloud_lines=10))
    assert again is not None and again.code == first.code and again.user_number == 1
    for hook in run(accounts.webhooks(portal=None)):
        run(accounts.revoke_webhook(portal=None, webhook_id=hook.webhook_id))
    assert run(accounts.bootstrap(domain="portal.example", max_cloud_lines=10)) is None
