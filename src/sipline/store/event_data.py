"""The data of a line's event (docs/behaviour.md#event-payload), built from the history entry of the
change: one place for the online form's `data[...]` and the offline queue's EVENT_DATA.

What is stored is the wire data but for LAST_UPDATED, kept as the Unix time: its text is in the
server's time zone as voximplant.sip.status shows it, formatted where it is sent or read
(events/payload.py `wire_data`).
"""

from __future__ import annotations

from sipline.store.records import Cause, StatusChange, StatusResult

NEW_LINE_STATUS = (StatusResult.WAIT.value, 0)  # what a cloud line's registration starts with

# docs/behaviour.md#event-payload: data[CHANGE] of each office line entry; other causes fire nothing
CHANGES = {
    Cause.BINDING_ADDED: "added",
    Cause.BINDING_REFRESHED: "moved",  # the PBX registered the same Contact from another source or transport
    Cause.BINDING_REMOVED: "removed",
    Cause.BINDING_EXPIRED: "expired",
    Cause.LINE_UPDATED: "removed",  # its credentials changed: every binding went
}


def registration_data(config_id: int, reg_id: int, entry: StatusChange, previous_result: str) -> dict[str, object]:
    return {
        "CONFIG_ID": config_id,
        "REG_ID": reg_id,
        "TYPE": "cloud",
        "STATUS_RESULT": entry.result.value,
        "STATUS_CODE": entry.code,
        "ERROR_MESSAGE": entry.message,
        "PREVIOUS_STATUS_RESULT": previous_result,
        "LAST_UPDATED": entry.at,
    }


def binding_data(config_id: int, live: int, entry: StatusChange) -> dict[str, object] | None:
    """None: an entry that is no binding change (it fires nothing)."""
    change = CHANGES.get(entry.cause)
    if change is None:
        return None
    return {
        "CONFIG_ID": config_id,
        "BINDINGS": live,
        "CONTACT": entry.contact or "",
        "SOURCE_ADDRESS": entry.source or "",
        "CHANGE": change,
    }
