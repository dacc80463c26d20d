"""Which write changes which cached read: the one place that says so.

A `cached` key's first element is its topic (database.py), and `write(touches=...)` names the
topics a write can change; they are forgotten here when it commits and, on PostgreSQL, NOTIFYed
in its transaction to every other process (store/postgres.py). A topic missing from a write is
a stale read in every process; `touches=None` forgets everything (the safe default for rare
writes, and what each line write did before: the next requests then re-read their portal and
their webhook from the store).

What each topic holds (its key), and the writes that change it:

- LINES ("lines", portal id, app or None): a portal's lines as sip.get lists them, completed
  with the portal's INCOMING_SERVER. Changed by a line's row or registration (status), and by
  the portal row.
- OFFICE_USER ("office-user", INCOMING_LOGIN): an office line with its HA1s and its portal's
  INCOMING_SERVER, or None. Changed by a line's row (a new line's login was unknown before) and
  by the portal row.
- BINDINGS ("bindings", line id): a line's bindings as the registrar last committed them.
  Changed by the registrar's writes and by a line's update or deletion, which drop them.
- PORTAL ("portal", id), PORTAL_HOST ("portal-host", host): the portal row, whole (limits,
  settings, DEFAULT_LINE); PORTAL_REALMS ("portal-realms",): the portals' own INCOMING_SERVERs.
  Changed by a write to a portal row. The repository adds these itself where a line write
  changes the portal row only sometimes (a first line becomes DEFAULT_LINE, deleting it clears
  it: Repository.touched), so that such a write does not forget them every time.
- WEBHOOK ("webhook", code hash): a webhook and its user; APP ("app", client id): an app;
  TOKEN ("token", access hash): a token, its app and user. Changed only by account writes,
  which name no topics (everything is forgotten).

Rows no cached read holds (history, traces, event queues, dashboard sessions) are written with
`touches=()`.
"""

from __future__ import annotations

LINES = "lines"
OFFICE_USER = "office-user"
BINDINGS = "bindings"
PORTAL = "portal"
PORTAL_HOST = "portal-host"
PORTAL_REALMS = "portal-realms"
WEBHOOK = "webhook"
APP = "app"
TOKEN = "token"

# a line's row, its registration or its bindings inserted, changed or deleted (voximplant.sip.*)
LINE_WRITE = (LINES, OFFICE_USER, BINDINGS)
# a portal row changed: whatever was read from it, and what was completed with it
PORTAL_WRITE = (PORTAL, PORTAL_HOST, PORTAL_REALMS, LINES, OFFICE_USER)
