"""Line traces handed through the store (docs/behaviour.md#line-trace), on every engine the `db` fixture offers:
rows under a token, taken once in the order written, and old rows pruned."""

from __future__ import annotations

from sipline.store.records import TracedRow
from tests.store.test_repository import run


def row(at: float, text: str, outgoing: bool = True) -> TracedRow:
    return TracedRow(at, outgoing, "udp", "127.0.0.1:5060", "[::1]:5070", text)


def test_rows_under_a_token_are_taken_once_in_order(db):
    first = [row(1.0, "REGISTER sip:a SIP/2.0\r\n\r\n"), row(1.1, "SIP/2.0 401 Unauthorized\r\n\r\n", False)]
    run(db.write(lambda repo: repo.add_trace("t1", 7, first, 100.0)))
    run(db.write(lambda repo: repo.add_trace("t1", 7, [row(0.5, "x" * 70_000)], 100.0)))  # another worker's, longer
    run(db.write(lambda repo: repo.add_trace("t2", 7, [row(2.0, "other")], 100.0)))
    run(db.write(lambda repo: repo.add_trace("t3", 7, [], 100.0)))  # nothing to hand over writes nothing
    taken = run(db.write(lambda repo: repo.take_trace("t1")))
    assert taken == [*first, row(0.5, "x" * 70_000)]
    assert taken[1].outgoing is False and isinstance(taken[0].outgoing, bool)
    assert run(db.write(lambda repo: repo.take_trace("t1"))) == []
    assert run(db.write(lambda repo: repo.take_trace("t3"))) == []
    assert run(db.write(lambda repo: repo.take_trace("t2"))) == [row(2.0, "other")]


def test_old_rows_are_pruned(db):
    run(db.write(lambda repo: repo.add_trace("old", 7, [row(1.0, "a")], 100.0)))
    run(db.write(lambda repo: repo.add_trace("new", 7, [row(1.0, "b")], 200.0)))
    run(db.write(lambda repo: repo.prune_traces(150.0)))
    assert run(db.write(lambda repo: repo.take_trace("old"))) == []
    assert run(db.write(lambda repo: repo.take_trace("new"))) == [row(1.0, "b")]
