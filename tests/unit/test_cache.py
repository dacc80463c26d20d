"""The store's read cache: entries by topic, forgotten by topic, bounded in size."""

from __future__ import annotations

from sipline.store import database
from sipline.store.database import MISSING, Cache


def test_forgetting_a_topic_keeps_the_others():
    cache = Cache()
    cache.put(("bindings", 1), "b1")
    cache.put(("office-user", "sip1"), "u1")
    cache.put("plain", "p")
    cache.forget(("bindings", "no-such-topic"))
    assert cache.get(("bindings", 1)) is MISSING
    assert cache.get(("office-user", "sip1")) == "u1" and cache.get("plain") == "p"
    cache.forget(())
    assert cache.get("plain") == "p"
    cache.forget(None)
    assert cache.get(("office-user", "sip1")) is MISSING and cache.get("plain") is MISSING


def test_the_cache_starts_over_when_full(monkeypatch):
    monkeypatch.setattr(database, "MAX_CACHED", 3)
    cache = Cache()
    for number in range(3):
        cache.put(("lines", number), number)
    cache.put(("lines", 2), "again")  # a key already held takes no more room
    assert cache.get(("lines", 0)) == 0
    cache.put(("portal", 1), "p")
    assert cache.get(("lines", 0)) is MISSING and cache.get(("portal", 1)) == "p"
