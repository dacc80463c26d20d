"""One line's page (docs/behaviour.md#dashboard): its fields, edit, delete, register now, history, trace,
and an office line's bindings and the credentials for its PBX."""

from __future__ import annotations

ROUTES: list = []
