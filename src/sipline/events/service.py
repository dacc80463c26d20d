"""The events side of a running sipline, as the wire layers reach it: bindings, the offline queue, and the
handlers' delivery queues as operators see them."""

from __future__ import annotations

from dataclasses import dataclass

from sipline.events.bindings import EventBindings
from sipline.events.offline import OfflineEvents
from sipline.events.queues import HandlerQueues
from sipline.store.database import Database


@dataclass(frozen=True)
class Events:
    bindings: EventBindings
    offline: OfflineEvents
    queues: HandlerQueues

    @classmethod
    def build(cls, db: Database, *, allow_private_targets: bool = False) -> Events:
        return cls(EventBindings(db, allow_private_targets=allow_private_targets), OfflineEvents(db), HandlerQueues(db))
