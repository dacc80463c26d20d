"""The REST API's rate and operating-time limits (docs/behaviour.md#rest-rate-limit, docs/behaviour.md#rest-operating-limit), shared through Redis.

Several API processes behind one balancer must count against one leaky bucket per
(portal, client IP) and one set of operating-time baskets per (app or webhook,
method), or every process would grant the full allowance. `RedisLimits` keeps that
state in Redis; `LocalLimits` is the per-process state of limits.py behind the same
async interface (`Limits`), for a single process or when no Redis is configured.

Semantics are those of limits.py, to the bit: each operation is ONE Lua script run
atomically by Redis (EVALSHA), doing limits.py's arithmetic on the same doubles
(stored as "%.17g", which round-trips exactly). The moment `now` is the API
process's wall clock, passed in by the caller, not Redis TIME: the hosts running
the API must keep their clocks synchronised (NTP); a skewed host drains buckets
early or late by its skew, never below zero (negative intervals count as zero).

- rate: a hash {level, when} per key, PEXPIREd for as long as it takes to drain to
  zero, after which a missing key and a drained bucket are the same thing.
- operating time: a list of "opened seconds" baskets per key, oldest first, trimmed
  by the scripts and expiring BASKET_LIFE after its last call.

Every script touches one key, so a Redis Cluster works too.

Degradation: when Redis cannot be reached (or errs), the call is answered by an
embedded `LocalLimits`, i.e. limits become per process: one warning is logged on
the switch, Redis is tried again at most once every `retry_after` seconds (with
short socket timeouts, so a dead Redis costs no latency on every request), and one
info is logged when it answers again. A limits failure never fails a request.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Protocol

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.commands.core import AsyncScript
from redis.exceptions import RedisError

from sipline.rest.limits import BASKET, BASKET_LIFE, Operating, OperatingTime, Rate, RateLimiter

log = logging.getLogger("sipline.limits")

TIMEOUT = 0.25  # seconds to connect to / hear from Redis before answering locally
MAX_IDLE_MS = 86_400_000  # a bucket that never drains (drain 0) is forgotten after a day


class Limits(Protocol):
    async def admit(self, key: str, rate: Rate, now: float) -> bool:
        """docs/behaviour.md#rest-rate-limit: count one request in the bucket of `key`; False: refuse it (not counted)."""

    async def blocked(self, key: str, now: float) -> bool:
        """docs/behaviour.md#rest-operating-limit: True: refuse the call (429 OPERATION_TIME_LIMIT)."""

    async def record(self, key: str, seconds: float, now: float) -> Operating | None:
        """docs/behaviour.md#rest-operating-limit: count a finished call; its `operating` report, None when there is no operating limit."""

    async def close(self) -> None: ...


class LocalLimits:
    """Per-process limits: limits.py as a `Limits`."""

    def __init__(self, operating_limit: float | None) -> None:
        self.rate = RateLimiter()
        self.operating = OperatingTime(operating_limit) if operating_limit is not None else None

    async def admit(self, key: str, rate: Rate, now: float) -> bool:
        return self.rate.admit(key, rate, now)

    async def blocked(self, key: str, now: float) -> bool:
        return self.operating is not None and self.operating.blocked(key, now)

    async def record(self, key: str, seconds: float, now: float) -> Operating | None:
        return self.operating.record(key, seconds, now) if self.operating is not None else None

    async def close(self) -> None:
        pass


_ADMIT = """
local burst, drain, now = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local state = redis.call('HMGET', KEYS[1], 'level', 'when')
local level, when = tonumber(state[1]) or 0, tonumber(state[2]) or now
level = math.max(0, level - drain * math.max(0, now - when))
local admitted = not (level + 1 > burst)
if admitted then level = level + 1 end
redis.call('HSET', KEYS[1], 'level', string.format('%.17g', level), 'when', ARGV[3])
local idle = MAX_IDLE_MS
if drain > 0 then idle = math.min(idle, math.ceil(level / drain * 1000)) end
redis.call('PEXPIRE', KEYS[1], string.format('%d', math.max(1, idle)))
return admitted and 1 or 0
"""

# the live baskets of KEYS[1] at `now`, oldest first, as {{opened, seconds}, …}; and
# their report {operating, oldest opened}
_BASKETS = """
local function fmt(x) return string.format('%.17g', x) end
local function live(now)
  local baskets = {}
  for _, entry in ipairs(redis.call('LRANGE', KEYS[1], 0, -1)) do
    local opened, seconds = string.match(entry, '^(%S+) (%S+)$')
    baskets[#baskets + 1] = {tonumber(opened), tonumber(seconds)}
  end
  while #baskets > 0 and now - baskets[1][1] >= BASKET_LIFE do table.remove(baskets, 1) end
  return baskets
end
local function report(baskets)
  local total = 0
  for _, basket in ipairs(baskets) do total = total + basket[2] end
  return {fmt(total), fmt(baskets[1][1])}
end
"""

_USED = (
    _BASKETS
    + """
local baskets = live(tonumber(ARGV[1]))
if #baskets == 0 then return false end
return report(baskets)
"""
)

_RECORD = (
    _BASKETS
    + """
local seconds, now = tonumber(ARGV[1]), tonumber(ARGV[2])
local baskets = live(now)
if #baskets == 0 or now - baskets[#baskets][1] >= BASKET then baskets[#baskets + 1] = {now, 0} end
baskets[#baskets][2] = baskets[#baskets][2] + seconds
redis.call('DEL', KEYS[1])
for _, basket in ipairs(baskets) do redis.call('RPUSH', KEYS[1], fmt(basket[1]) .. ' ' .. fmt(basket[2])) end
redis.call('PEXPIRE', KEYS[1], BASKET_LIFE_MS)
return report(baskets)
"""
)

_CONSTANTS = (
    f"local BASKET, BASKET_LIFE, BASKET_LIFE_MS, MAX_IDLE_MS = "
    f"{BASKET!r}, {BASKET_LIFE!r}, {int(BASKET_LIFE * 1000)}, {MAX_IDLE_MS}\n"
)

_UNREACHABLE = object()


class RedisLimits:
    """Limits shared by every process using the Redis at `url`; per process while it is unreachable."""

    def __init__(
        self, url: str, operating_limit: float | None, key_prefix: str = "sipline:", retry_after: float = 1.0
    ) -> None:
        self.operating_limit = operating_limit
        self.key_prefix = key_prefix
        self.retry_after = retry_after
        self._local = LocalLimits(operating_limit)
        self._client = Redis.from_url(
            url, socket_connect_timeout=TIMEOUT, socket_timeout=TIMEOUT, retry=Retry(NoBackoff(), 0)
        )
        self._admit = self._client.register_script(_CONSTANTS + _ADMIT)
        self._used = self._client.register_script(_CONSTANTS + _USED)
        self._record = self._client.register_script(_CONSTANTS + _RECORD)
        self._degraded = False
        self._next_try = 0.0  # time.monotonic() from which a degraded instance asks Redis again

    async def admit(self, key: str, rate: Rate, now: float) -> bool:
        reply = await self._run(self._admit, f"rate:{key}", rate.burst, rate.drain, now)
        if reply is _UNREACHABLE:
            return await self._local.admit(key, rate, now)
        return reply == 1

    async def blocked(self, key: str, now: float) -> bool:
        if self.operating_limit is None:
            return False
        reply = await self._run(self._used, f"operating:{key}", now)
        if reply is _UNREACHABLE:
            return await self._local.blocked(key, now)
        return reply is not None and _operating(reply).seconds > self.operating_limit

    async def record(self, key: str, seconds: float, now: float) -> Operating | None:
        if self.operating_limit is None:
            return None
        reply = await self._run(self._record, f"operating:{key}", seconds, now)
        if reply is _UNREACHABLE:
            return await self._local.record(key, seconds, now)
        return _operating(reply)

    @property
    def degraded(self) -> bool:
        """True while Redis is unreachable and the limits are per process."""
        return self._degraded

    async def close(self) -> None:
        await self._client.aclose()

    async def _run(self, script: AsyncScript, key: str, *args: float) -> Any:
        """The script's reply (a Lua value as Redis converts it, so untyped), or _UNREACHABLE: answer locally."""
        if self._degraded:
            if time.monotonic() < self._next_try:
                return _UNREACHABLE
            self._next_try = time.monotonic() + self.retry_after  # one probe at a time
        try:
            reply = await script(keys=[self.key_prefix + key], args=list(args))
        except (RedisError, OSError):  # ConnectionError and TimeoutError are OSErrors
            self._next_try = time.monotonic() + self.retry_after
            if not self._degraded:
                self._degraded = True
                log.warning("shared limits degraded: redis unreachable; limits are per process")
            return _UNREACHABLE
        if self._degraded:
            self._degraded = False
            log.info("shared limits restored: redis reachable")
        return reply


def _operating(reply: list[bytes]) -> Operating:
    seconds, oldest = reply
    return Operating(float(seconds), int(float(oldest) + BASKET_LIFE))
