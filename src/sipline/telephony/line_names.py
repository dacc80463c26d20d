"""How a line is named: the key its TITLE is unique by, and an office line's login."""

from __future__ import annotations


def title_key(title: str) -> str:
    """TITLE uniqueness is trimmed and case-insensitive, as on Bitrix24's MySQL collation."""
    return title.strip().casefold()


def office_login(config_id: int) -> str:
    """The INCOMING_LOGIN of an office line: sip<CONFIG_ID>, fixed for the line's life."""
    return f"sip{config_id}"
