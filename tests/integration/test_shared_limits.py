"""Limits shared through Redis (shared_limits.py): the same answers as limits.py, shared, and degrading.

Against a redis-server of their own (tests/peers/redis.py); every test keeps to its own key prefix.
The degradation tests need no Redis; the recovery test starts and stops a second one.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sipline.rest.limits import BASKET_LIFE, Operating, Rate
from sipline.rest.shared_limits import LocalLimits, RedisLimits
from tests.peers.redis import RedisServer

T0 = 1_800_000_000.0
DEGRADED = "shared limits degraded: redis unreachable; limits are per process"
RESTORED = "shared limits restored: redis reachable"


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory):
    with RedisServer(tmp_path_factory.mktemp("redis")) as server:
        yield server.url


@pytest.fixture
def prefix(redis_url):
    prefix = f"sipline-test:{uuid.uuid4().hex}:"
    yield prefix
    _forget(redis_url, prefix)


def _forget(redis_url: str, prefix: str) -> None:
    with redis.Redis.from_url(redis_url) as client:
        keys = list(client.scan_iter(match=prefix + "*"))
        if keys:
            client.delete(*keys)


async def _apply(limits, ops) -> list[object]:
    results = []
    for op, *args in ops:
        results.append(await getattr(limits, op)(*args))
    return results


async def _both(redis_url, ops, operating_limit, prefix) -> tuple[list[object], list[object]]:
    shared = RedisLimits(redis_url, operating_limit, key_prefix=prefix)
    try:
        answers = await _apply(shared, ops)
        assert not shared.degraded  # Redis answered every call
        return answers, await _apply(LocalLimits(operating_limit), ops)
    finally:
        await shared.close()


RATE = Rate(burst=3, drain=0.7)
RESET = int(T0 + BASKET_LIFE)
SEQUENCE = [  # (operation, *arguments, expected); operating limit 1.0
    ("admit", "p1/10.0.0.1", RATE, T0, True),
    ("admit", "p1/10.0.0.1", RATE, T0, True),
    ("admit", "p1/10.0.0.1", RATE, T0 + 0.1, True),
    ("admit", "p1/10.0.0.1", RATE, T0 + 0.1, False),  # the bucket is full
    ("admit", "p1/10.0.0.2", RATE, T0 + 0.1, True),  # another IP, another bucket
    ("admit", "p1/10.0.0.1", RATE, T0 + 1.1, False),  # 0.7 drained: not room for one; not counted
    ("admit", "p1/10.0.0.1", RATE, T0 + 1.6, True),
    ("admit", "p1/10.0.0.1", RATE, T0 + 1.6, False),
    ("admit", "p1/10.0.0.1", RATE, T0 + 30.3, True),  # drained
    ("blocked", "app/m", T0, False),
    ("record", "app/m", 0.4, T0 + 0.3, Operating(0.4, int(T0 + 0.3 + BASKET_LIFE))),
    ("record", "app/m", 0.3, T0 + 60.2, Operating(0.4 + 0.3, int(T0 + 0.3 + BASKET_LIFE))),  # same basket
    ("record", "app/m", 0.2, T0 + 60.3, Operating(0.4 + 0.3 + 0.2, int(T0 + 0.3 + BASKET_LIFE))),  # a new one
    ("blocked", "app/m", T0 + 61, False),
    ("record", "app/m", 0.15, T0 + 100, Operating((0.4 + 0.3) + (0.2 + 0.15), int(T0 + 0.3 + BASKET_LIFE))),
    ("blocked", "app/m", T0 + 101, True),  # over the limit
    ("blocked", "app/other", T0 + 101, False),
    ("blocked", "app/m", T0 + 0.3 + BASKET_LIFE, False),  # the first basket expired
    ("record", "app/m", 0.1, T0 + 600.5, Operating(0.2 + 0.15 + 0.1, int(T0 + 60.3 + BASKET_LIFE))),
    ("blocked", "app/m", T0 + 1300, False),  # all expired
    ("record", "app/m", 0.5, T0 + 1300, Operating(0.5, int(T0 + 1300 + BASKET_LIFE))),
]


def test_the_same_answers_as_limits_py(redis_url, prefix):
    ops = [op[:-1] for op in SEQUENCE]
    shared, local = asyncio.run(_both(redis_url, ops, 1.0, prefix))
    assert local == [op[-1] for op in SEQUENCE]
    assert shared == local


# -0.5: a call stamped by a host whose clock is behind
_dt = st.sampled_from([-0.5, 0.0, 0.1, 0.25, 1.0, 1 / 3, 30.0, 59.99, 60.0, 200.0, 599.9])
_op = st.one_of(
    st.tuples(st.just("admit"), st.sampled_from(["a", "b"]), _dt),
    st.tuples(st.just("record"), st.sampled_from(["m", "n"]), _dt, st.floats(0, 3)),
    st.tuples(st.just("blocked"), st.sampled_from(["m", "n"]), _dt),
)


# burst ≥ 2 and drain ≤ 2: a bucket's Redis expiry (real time) is never shorter than
# half a second, longer than an example takes though its hand clock may stand still
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(burst=st.integers(2, 5), drain=st.sampled_from([0.0, 0.3, 1.0, 2.0]), steps=st.lists(_op, max_size=30))
def test_any_sequence_gives_the_same_answers(redis_url, prefix, burst, drain, steps):
    now, ops, rate = T0, [], Rate(burst, drain)
    for op, key, dt, *seconds in steps:
        now += dt
        ops.append(("admit", key, rate, now) if op == "admit"
                   else ("record", key, seconds[0], now) if op == "record" else ("blocked", key, now))
    example = f"{prefix}{uuid.uuid4().hex}:"
    try:
        shared, local = asyncio.run(_both(redis_url, ops, 2.5, example))
    finally:
        _forget(redis_url, example)
    assert shared == local


def test_processes_share_one_bucket(redis_url, prefix):
    async def scenario():
        first, second = RedisLimits(redis_url, None, prefix), RedisLimits(redis_url, None, prefix)
        try:
            rate = Rate(burst=5, drain=1)
            burst = [await first.admit("p1/10.0.0.1", rate, T0) for _ in range(5)]
            return burst, await second.admit("p1/10.0.0.1", rate, T0), await second.admit("p1/10.0.0.1", rate, T0 + 1)
        finally:
            await first.close()
            await second.close()

    burst, refused, later = asyncio.run(scenario())
    assert burst == [True] * 5
    assert not refused
    assert later  # one drained


def test_processes_share_operating_time_until_the_baskets_expire(redis_url, prefix):
    async def scenario():
        first, second = RedisLimits(redis_url, 10, prefix), RedisLimits(redis_url, 10, prefix)
        try:
            assert not await second.blocked("app/m", T0)
            assert await first.record("app/m", 6, T0) == Operating(6, int(T0 + BASKET_LIFE))
            assert await second.record("app/m", 5, T0 + 70) == Operating(11, int(T0 + BASKET_LIFE))
            assert await first.blocked("app/m", T0 + 71)
            assert await second.blocked("app/m", T0 + BASKET_LIFE - 1)
            assert not await second.blocked("app/m", T0 + BASKET_LIFE)  # 5 left
            assert not await first.blocked("app/m", T0 + 70 + BASKET_LIFE)  # nothing left
            assert await first.record("app/m", 1, T0 + 70 + BASKET_LIFE) == Operating(1, int(T0 + 70 + 2 * BASKET_LIFE))
        finally:
            await first.close()
            await second.close()

    asyncio.run(scenario())


def test_idle_keys_expire(redis_url, prefix):
    async def scenario():
        limits = RedisLimits(redis_url, 10, prefix)
        try:
            await limits.admit("k", Rate(burst=5, drain=2), T0)
            await limits.record("k", 1, T0)
        finally:
            await limits.close()

    asyncio.run(scenario())
    with redis.Redis.from_url(redis_url) as client:
        assert 0 < client.pttl(f"{prefix}rate:k") <= 500  # level 1 drains in 0.5 s
        assert BASKET_LIFE * 1000 - 5000 < client.pttl(f"{prefix}operating:k") <= BASKET_LIFE * 1000


def test_without_an_operating_limit_nothing_is_counted():
    async def scenario():
        limits = RedisLimits("redis://127.0.0.1:1", None)
        try:
            return await limits.blocked("k", T0), await limits.record("k", 100, T0)
        finally:
            await limits.close()

    assert asyncio.run(scenario()) == (False, None)


def test_an_unreachable_redis_degrades_to_per_process_limits(caplog):
    async def scenario():
        limits = RedisLimits("redis://127.0.0.1:1", 10)
        try:
            began = time.monotonic()
            admitted = [await limits.admit("p1/10.0.0.1", Rate(burst=50, drain=2), T0) for _ in range(60)]
            record = await limits.record("app/m", 11, T0)
            blocked = await limits.blocked("app/m", T0 + 1)
            assert limits.degraded
            return admitted, record, blocked, time.monotonic() - began
        finally:
            await limits.close()

    with caplog.at_level(logging.INFO, logger="sipline.limits"):
        admitted, record, blocked, took = asyncio.run(scenario())
    assert admitted == [True] * 50 + [False] * 10
    assert record == Operating(11, int(T0 + BASKET_LIFE)) and blocked
    assert [r.getMessage() for r in caplog.records if r.name == "sipline.limits"] == [DEGRADED]
    assert [r.levelno for r in caplog.records if r.name == "sipline.limits"] == [logging.WARNING]
    assert took < 1  # Redis was asked once, not for every call


def test_failed_retries_warn_once(caplog):
    async def scenario():
        limits = RedisLimits("redis://127.0.0.1:1", None, retry_after=0)  # asks Redis every call
        try:
            return [await limits.admit("k", Rate(burst=3, drain=0), T0) for _ in range(20)]
        finally:
            await limits.close()

    with caplog.at_level(logging.INFO, logger="sipline.limits"):
        assert asyncio.run(scenario()) == [True] * 3 + [False] * 17
    assert [r.getMessage() for r in caplog.records if r.name == "sipline.limits"] == [DEGRADED]


def test_limits_are_shared_again_once_redis_answers(caplog, tmp_path):
    server = RedisServer(tmp_path / "redis").start()
    server.stop()  # its port is known; nothing answers there yet

    async def scenario():
        limits = RedisLimits(server.url, None, retry_after=0.1)
        try:
            rate = Rate(burst=1, drain=0)
            assert await limits.admit("k", rate, T0)  # per process
            server.start()
            try:
                await asyncio.sleep(0.1)
                assert await limits.admit("k", rate, T0)  # the shared bucket is empty
                assert not await limits.admit("k", rate, T0)
            finally:
                server.stop()
            await asyncio.sleep(0.1)
            assert await limits.admit("j", rate, T0)  # per process again
            assert not await limits.admit("k", rate, T0)  # the local bucket still holds the first call
        finally:
            await limits.close()

    with caplog.at_level(logging.INFO, logger="sipline.limits"):
        asyncio.run(scenario())
    assert [r.getMessage() for r in caplog.records if r.name == "sipline.limits"] == [DEGRADED, RESTORED, DEGRADED]


def test_a_look_at_the_expiry_instant_leaves_the_basket_for_a_clock_that_steps_back(redis_url, prefix):
    """Found by the property test above: a `blocked` at the very instant a basket expires, then a
    call stamped half a second earlier (another host's clock) still counts into that basket."""
    ops = [("record", "m", 0.0, T0 - 0.5), ("blocked", "m", T0 + 599.5), ("record", "m", 0.0, T0 + 599.0)]
    shared, local = asyncio.run(_both(redis_url, ops, 2.5, prefix))
    assert shared == local == [Operating(0.0, int(T0 - 0.5 + BASKET_LIFE)), False,
                               Operating(0.0, int(T0 - 0.5 + BASKET_LIFE))]
