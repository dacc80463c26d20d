"""Errors on the Bitrix24 REST wire (rest-protocol.md §5) and the one place that renders them.

    RestError                       500 INTERNAL_SERVER_ERROR
    ├── MethodNotFound              404 ERROR_METHOD_NOT_FOUND
    ├── NoAuthFound                 401 NO_AUTH_FOUND
    ├── InvalidCredentials          403 INVALID_CREDENTIALS
    ├── InsufficientScope           403 insufficient_scope
    ├── ArgumentError               400 ERROR_ARGUMENT
    └── RequestTooLarge             413 ERROR_ARGUMENT

Errors of the telephony rules carry no wire code; TELEPHONY_ERRORS maps them, and a
method may override the mapping for itself (voximplant-sip.md gives the same "not
found" a different status in `update`, `delete` and `line.outgoing.sip.set`).
"""

from __future__ import annotations

from sipline.telephony import errors as tel


class RestError(Exception):
    code = "INTERNAL_SERVER_ERROR"
    status = 500
    description = "Internal server error"

    def __init__(self, description: str | None = None, **extra: str) -> None:
        self.description = description or self.description
        self.extra = extra
        super().__init__(self.description)


class MethodNotFound(RestError):
    code, status, description = "ERROR_METHOD_NOT_FOUND", 404, "Method not found!"


class NoAuthFound(RestError):
    code, status, description = "NO_AUTH_FOUND", 401, "Wrong authorization data"


class InvalidCredentials(RestError):
    code, status, description = "INVALID_CREDENTIALS", 403, "Invalid request credentials"


class InsufficientScope(RestError):
    code, status = "insufficient_scope", 403
    description = "The request requires higher privileges than provided by the webhook token"


class ArgumentError(RestError):
    code, status = "ERROR_ARGUMENT", 400

    def __init__(self, description: str, *, argument: str | None = None) -> None:
        super().__init__(description, **({"argument": argument} if argument else {}))


class RequestTooLarge(RestError):
    code, status = "ERROR_ARGUMENT", 413


WireMapping = tuple[str, int]

TELEPHONY_ERRORS: dict[type[tel.TelephonyError], WireMapping] = {
    tel.AccessDenied: ("ACCESS_DENIED", 403),
    tel.CheckFieldsError: ("CHECK_FIELDS_ERROR", 400),
    tel.MaxCloudPbx: ("MAX_CLOUD_PBX", 400),
    tel.TitleExists: ("TITLE_EXISTS", 400),
    tel.LineNotFound: ("ERROR_NOT_FOUND", 404),
    tel.RegistrationNotFound: ("REG_ID_NOT_FOUND", 400),
    tel.UnknownFilterField: ("ERROR_CORE", 400),
    tel.InvalidArgument: ("ERROR_ARGUMENT", 400),
}


def to_rest_error(
    error: tel.TelephonyError, overrides: dict[type[tel.TelephonyError], WireMapping]
) -> RestError:
    code, status = overrides.get(type(error)) or TELEPHONY_ERRORS[type(error)]
    wire = RestError(str(error))
    wire.code, wire.status = code, status
    return wire


def error_body(error: RestError) -> dict[str, str]:
    return {"error": error.code, "error_description": error.description, **error.extra}
