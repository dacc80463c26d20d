"""Field checks of voximplant.sip.add / update (docs/behaviour.md#line-field-checks and docs/behaviour.md#line-safe-fields).

Every failed check of one call is reported, in the table's order. Beyond Bitrix24,
sipline refuses control characters (header injection) and a SERVER that is not a
SIP host address, since these values go into real SIP messages; those checks come
right after the documented ones of the same field, TITLE's last. DIGEST_ALGORITHMS
is sipline's own field (README, "Office lines"): checked last, office lines only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sipline.sip import digest
from sipline.sip.address import InvalidAddress, parse_server_address
from sipline.store.records import LineType
from sipline.telephony.errors import CheckFieldsError

MAX_LENGTH = 100  # docs/behaviour.md#line-record: SERVER, LOGIN, PASSWORD
MAX_TITLE_LENGTH = 255  # the TITLE column of Bitrix24's configuration table is varchar(255)
_PHP_TRIM = " \t\n\r\0\x0b"
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")  # Unicode category Cc


@dataclass(frozen=True)
class LineFields:
    """Cleaned values; None where the caller did not give the field."""

    type: LineType | None = None
    title: str | None = None
    server: str | None = None
    login: str | None = None
    password: str | None = None
    digest_algorithms: str | None = None  # canonical "SHA-256,MD5"; "" clears the line's own choice


def check_new_line(
    type_: str | None,
    title: str | None,
    server: str | None,
    login: str | None,
    password: str | None,
    digest_algorithms: str | None = None,
) -> LineFields:
    """TYPE defaults to cloud and is case-insensitive; SERVER and LOGIN are required.

    Raises: CheckFieldsError with every failed check.
    """
    errors: list[str] = []
    line_type = _line_type("cloud" if type_ is None else type_.lower(), errors)
    fields = LineFields(
        type=line_type,
        server=_server(server or "", errors),
        login=_login(login or "", errors),
        password=_password(password, errors),
        title=_title(title, errors),
        digest_algorithms=_digest_algorithms(digest_algorithms, line_type, errors),
    )
    if errors:
        raise CheckFieldsError(errors)
    return fields


def check_changes(
    type_: str | None,
    title: str | None,
    server: str | None,
    login: str | None,
    password: str | None,
    digest_algorithms: str | None = None,
    *,
    line_type: LineType | None = None,
) -> LineFields:
    """Only the given fields are checked; TYPE must be exactly `cloud` or `office` here. `line_type`:
    the line's type as stored.

    Raises: CheckFieldsError with every failed check.
    """
    errors: list[str] = []
    fields = LineFields(
        type=None if type_ is None else _line_type(type_, errors),
        server=None if server is None else _server(server, errors),
        login=None if login is None else _login(login, errors),
        password=_password(password, errors),
        title=_title(title, errors),
        digest_algorithms=_digest_algorithms(digest_algorithms, line_type, errors, clear=True),
    )
    if errors:
        raise CheckFieldsError(errors)
    return fields


def _line_type(value: str, errors: list[str]) -> LineType | None:
    try:
        return LineType(value)
    except ValueError:
        errors.append("PBX type is not specified.")
        return None


def _server(server: str, errors: list[str]) -> str:
    # Bitrix24 strips every http:// and https:// (its UI invites pasting URLs).
    cleaned = server.strip(_PHP_TRIM).replace("http://", "").replace("https://", "").strip(_PHP_TRIM)
    if not cleaned:
        errors.append("Server address not specified")
    elif len(cleaned) > MAX_LENGTH:
        errors.append("Server address must not exceed 100 characters.")
    elif _has_control(server, "Server address", errors):
        pass
    else:
        try:
            parse_server_address(cleaned)
        except InvalidAddress:
            errors.append(
                "Server address must be host[:port] or a sip:/sips: URI (optionally with ;transport=udp|tcp|tls)."
            )
    return cleaned


def _login(login: str, errors: list[str]) -> str:
    cleaned = login.strip(_PHP_TRIM)
    if not cleaned:
        errors.append("Login for connecting to the server not specified")
    elif len(cleaned) > MAX_LENGTH:
        errors.append("Server login must not exceed 100 characters.")
    else:
        _has_control(login, "Login", errors)
    return cleaned


def _password(password: str | None, errors: list[str]) -> str | None:
    if password is None:
        return None
    if len(password) > MAX_LENGTH:  # the untrimmed length counts [S]
        errors.append("Password for connecting to the server cannot exceed 100 characters")
    else:
        _has_control(password, "Password", errors)
    return password.strip(_PHP_TRIM)


def _title(title: str | None, errors: list[str]) -> str | None:
    if title is None:
        return None
    cleaned = title.strip(_PHP_TRIM)
    if len(cleaned) > MAX_TITLE_LENGTH:
        errors.append(f"Connection name must not exceed {MAX_TITLE_LENGTH} characters.")
    else:
        _has_control(title, "Connection name", errors)
    return cleaned


def _digest_algorithms(
    value: str | None, line_type: LineType | None, errors: list[str], *, clear: bool = False
) -> str | None:
    """docs/behaviour.md#office-digest: the office line's challenge algorithms, in order; with `clear`, "" returns to the portal's."""
    if value is None or (clear and not value.strip()):
        return None if value is None else ""
    if line_type is not LineType.OFFICE:
        errors.append("Digest algorithms apply to office lines only.")
        return None
    try:
        return ",".join(digest.algorithm_list(value))
    except digest.DigestError:
        errors.append(f"Digest algorithms must be a comma-separated list of {', '.join(digest.KEPT)}.")
        return None


def _has_control(value: str, label: str, errors: list[str]) -> bool:
    """Control characters (CR, LF, NUL, any Cc) are refused, even where trimming would drop them."""
    if _CONTROL.search(value):
        errors.append(f"{label} must not contain control characters.")
        return True
    return False
