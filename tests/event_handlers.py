"""Handlers bound straight in the store, as event.bind will (helper A's methods): the rows the
delivery tests need until then, and a receiver that records what handlers are sent."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl

import sqlalchemy as sa

from sipline.store import schema as t
from tests.stores import execute


def bind_row(portal_id: int, event: str, handler: str, *, owner: str = "", app_id: int | None = None,
             auth_type: int = 0, user_number: int = 1) -> dict:
    return dict(portal_id=portal_id, owner=owner, app_id=app_id, event=event.upper(), handler=handler,
                auth_type=auth_type, user_number=user_number, options="{}", created_at=time.time())


def bind(repo, portal_id: int, event: str, handler: str, **more) -> int:
    """In a store transaction (a repository's connection)."""
    return repo.conn.execute(sa.insert(t.event_handler).values(bind_row(portal_id, event, handler, **more))
                             .returning(t.event_handler.c.id)).scalar_one()


def bind_in(data_dir: Path, event: str, handler: str, *, owner: str = "", app_client_id: str | None = None,
            auth_type: int = 0, portal: str | None = None) -> int:
    """In the store of a running sipline's data dir, as an operator with SQL would."""
    portal_sql = f"(SELECT id FROM portal WHERE domain = '{portal}')" if portal else "(SELECT min(id) FROM portal)"
    app_sql = f"(SELECT id FROM app WHERE client_id = '{app_client_id}')" if app_client_id else "NULL"
    execute(data_dir, "INSERT INTO event_handler (portal_id, owner, app_id, event, handler, auth_type, user_number, "
                      f"options, created_at) VALUES ({portal_sql}, '{owner}', {app_sql}, '{event.upper()}', "
                      f"'{handler}', {auth_type}, 1, '{{}}', {time.time()})")
    return execute(data_dir, "SELECT max(id) FROM event_handler")[0][0]


class Receiver:
    """A handler on loopback: records each POST (time, path, headers, body) and answers with the
    next status of `statuses` (the last one repeating), or not at all while `down`."""

    def __init__(self, statuses: tuple[int, ...] = (200,), port: int = 0) -> None:
        self.received: list[tuple[float, str, dict[str, str], bytes]] = []
        self.statuses = list(statuses)
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver.lock:
                    receiver.received.append((time.time(), self.path, dict(self.headers), body))
                    status = receiver.statuses.pop(0) if len(receiver.statuses) > 1 else receiver.statuses[0]
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @classmethod
    def on_port(cls, port: int, statuses: tuple[int, ...] = (200,)) -> Receiver:
        return cls(statuses, port)

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def forms(self, path: str | None = None) -> list[dict[str, str]]:
        with self.lock:
            return [dict(parse_qsl(body.decode(), keep_blank_values=True)) for _, p, _, body in self.received if path is None or p == path]
