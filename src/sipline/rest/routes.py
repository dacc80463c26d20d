"""The REST URL forms (docs/behaviour.md#rest-urls): which method, which transport, which webhook."""

from __future__ import annotations

import re
from dataclasses import dataclass

from sipline.rest.errors import MethodNotFound

_METHOD_NAME = re.compile(r"[a-z0-9_.]+\Z")
_TRANSPORTS = {".json": "json", ".xml": "xml"}


@dataclass(frozen=True)
class Route:
    method: str  # lower-cased wire name, suffix removed
    transport: str  # "json" or "xml"
    webhook: tuple[str, str] | None  # (user id, code) of /rest/{user}/{code}/{method}


def parse_rest_path(path: str) -> Route:
    """`/rest/{method}` or `/rest/{user_id}/{code}/{method}`, each with optional `.json`/`.xml`.

    Repeated and trailing slashes are tolerated (clients build `…/code//method/`).

    Raises:
        MethodNotFound: not a REST URL, or a method name outside [a-z0-9_.].
    """
    segments = [segment for segment in path.split("/") if segment]
    if len(segments) not in (2, 4) or segments[0] != "rest":
        raise MethodNotFound()
    name = segments[-1].lower()
    transport = "json"
    for suffix, kind in _TRANSPORTS.items():
        if name.endswith(suffix):
            name, transport = name[: -len(suffix)], kind
            break
    if not _METHOD_NAME.match(name):
        raise MethodNotFound()
    webhook = (segments[1], segments[2]) if len(segments) == 4 else None
    return Route(name, transport, webhook)


def masked(path: str) -> str:
    """The path with every place a webhook code may hold hidden, for logs.

    After a `rest` segment in any case and place (a proxy may leave a prefix, `/b24/rest/…`), as in
    `/rest/{user}/{code}/…`: the code's segment, and the user's unless it is a user ID
    (`/rest/{code}/{method}` is a client's mistake, but the code in it is still a credential).
    Slashes and case are kept as sent.
    """
    segments = path.split("/")
    places = [index for index, segment in enumerate(segments) if segment]
    starts = [number for number, index in enumerate(places) if segments[index].lower() == "rest"]
    after = places[starts[0] + 1 : starts[0] + 3] if starts else []
    if len(after) < 2:
        return path
    user, code = after
    hidden = {code} if segments[user].isdigit() else {user, code}
    return "/".join("***" if index in hidden else segment for index, segment in enumerate(segments))
