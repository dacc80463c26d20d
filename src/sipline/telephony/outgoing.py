"""voximplant.line.*: the portal's lines by line id, and its default outgoing line (docs/behaviour.md#line-methods).

These look at every line of the portal, whichever app made it: the default
outgoing line is a portal setting (docs/behaviour.md#outgoing-line).
"""

from __future__ import annotations

from sipline.store.records import Line, LineType
from sipline.store.topics import PORTAL_WRITE
from sipline.telephony.caller import Caller
from sipline.telephony.errors import LineNotFound
from sipline.telephony.lines import SipLines, require_numbers_right

BASE_NUMBER = "LINK_BASE_NUMBER"  # "no SIP line": calls go out through the portal's own number
_HTML = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#039;"})


def display_name(line: Line) -> str:
    """TITLE, or the name Bitrix24 shows for an unnamed line: `Cloud PBX (9)`."""
    if line.title:
        return line.title
    kind = "Cloud PBX" if line.type is LineType.CLOUD else "Office PBX"
    return f"{kind} ({line.config_id})"


class OutgoingLines:
    def __init__(self, lines: SipLines) -> None:
        self.lines = lines

    async def names(self, caller: Caller) -> dict[str, str]:
        """Line id → display name, HTML-escaped as PHP's htmlspecialchars() does."""
        require_numbers_right(caller)
        return {line.line_id: display_name(line).translate(_HTML) for line in await self._all(caller)}

    async def get(self, caller: Caller) -> str:
        require_numbers_right(caller)
        portal = await self.lines.portal(caller.portal_id)
        ids = {line.line_id for line in await self._all(caller)}
        return portal.default_line if portal.default_line in ids else BASE_NUMBER

    async def set(self, caller: Caller, line_id: str | None) -> None:
        """Sets the default if `line_id` is a line of the portal or LINK_BASE_NUMBER; else nothing."""
        require_numbers_right(caller)
        if line_id == BASE_NUMBER:
            await self._store(caller, None)
        elif line_id in {line.line_id for line in await self._all(caller)}:
            await self._store(caller, line_id)

    async def set_sip(self, caller: Caller, config_id: int) -> None:
        """Raises: LineNotFound when no line of the portal has this CONFIG_ID."""
        require_numbers_right(caller)
        found = [line for line in await self._all(caller) if line.config_id == config_id]
        if not found:
            raise LineNotFound()
        await self._store(caller, found[0].line_id)

    async def _all(self, caller: Caller) -> list[Line]:
        return await self.lines.portal_lines(caller.portal_id)

    async def _store(self, caller: Caller, line_id: str | None) -> None:
        await self.lines.db.write(lambda repo: repo.set_default_line(caller.portal_id, line_id), touches=PORTAL_WRITE)
