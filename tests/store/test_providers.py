"""What the providers view reads from the store (docs/behaviour.md#providers), on every engine the `db`
fixture offers: the breakers' states per worker, the caller's cloud lines, each line's newest error."""

from __future__ import annotations

from sipline.store.records import BreakerState, Cause, LineType, ProviderState, StatusChange, StatusResult
from tests.store.test_repository import new_line, run, setup_portal


def states(db) -> list[ProviderState]:
    return run(db.read(lambda repo: repo.provider_states()))


def test_states_are_kept_per_provider_and_worker_and_cleared_per_worker(db):
    opened = ProviderState("sip.example.net", BreakerState.OPEN, 10.0)
    run(db.write(lambda repo: repo.save_provider_states([opened]), touches=()))
    run(db.write(lambda repo: repo.save_provider_states([opened], "w1"), touches=()))
    recovering = ProviderState("sip.example.net", BreakerState.RECOVERING, 20.0)
    run(db.write(lambda repo: repo.save_provider_states([recovering]), touches=()))  # replaces ""'s row
    assert states(db) == [recovering, opened]  # "" before "w1"
    run(db.write(lambda repo: repo.clear_provider_states(), touches=()))
    assert states(db) == [opened]


def test_a_gone_workers_states_go_with_it(db):
    run(db.write(lambda repo: repo.lease_round("w1", 10.0, 500), touches=()))
    opened = ProviderState("sip.example.net", BreakerState.OPEN, 10.0)
    for worker in ("w1", "w-gone", ""):
        run(db.write(lambda repo, worker=worker: repo.save_provider_states([opened], worker), touches=()))
    run(db.write(lambda repo: repo.lease_round("w1", 10.0, 500), touches=()))
    rows = run(db.read(lambda repo: repo.conn.exec_driver_sql("SELECT worker FROM provider_state").scalars().all()))
    assert sorted(rows) == ["", "w1"]  # a single process's row stays; an unknown worker's goes


def test_the_callers_cloud_lines_and_their_newest_errors(db):
    portal, *_ = setup_portal(db)

    def add(repo, line_type=LineType.CLOUD, **fields):
        return repo.insert_line(new_line(repo, portal.id, line_type, **fields), 1.0)

    mine = run(db.write(lambda repo: add(repo, app_id="app", server="Sip.example:5070")))
    other_app = run(db.write(lambda repo: add(repo, app_id="other")))
    run(db.write(lambda repo: add(repo, LineType.OFFICE, app_id="app")))
    rows = run(db.read(lambda repo: repo.caller_registrations(portal.id, "app")))
    assert [line.id for line, _ in rows] == [mine.id]
    assert rows[0][1].status_result is StatusResult.WAIT and rows[0][0].server == "Sip.example:5070"

    def change(at: float, result: StatusResult, code: int) -> StatusChange:
        return StatusChange(at, result, code, "m", Cause.TIMEOUT if code else Cause.REGISTERED)

    run(db.write(lambda repo: repo.add_history([
        (mine.id, change(1.0, StatusResult.ERROR, 408)),
        (mine.id, change(2.0, StatusResult.ERROR, 503)),
        (mine.id, change(3.0, StatusResult.SUCCESS, 0)),
        (other_app.id, change(4.0, StatusResult.ERROR, 403)),
    ])))
    errors = run(db.read(lambda repo: repo.last_errors([mine.id])))
    assert errors == {mine.id: change(2.0, StatusResult.ERROR, 503)}
    assert run(db.read(lambda repo: repo.last_errors([]))) == {}
