"""The events side of a running sipline, as the wire layers reach it: bindings and the offline queue."""

from __future__ import annotations

from dataclasses import dataclass

from sipline.events.bindings import EventBindings
from sipline.events.offline import OfflineEvents
from sipline.store.database import Database


@dataclass(frozen=True)
class Events:
    bindings: EventBindings
    offline: OfflineEvents

    @classmethod
    def build(cls, db: Database, *, allow_private_targets: bool = False) -> Events:
        return cls(EventBindings(db, allow_private_targets=allow_private_targets), OfflineEvents(db))
