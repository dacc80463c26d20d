"""Errors on the Bitrix24 REST wire (docs/behaviour.md#rest-errors) and the one place that renders them.

Every error answer of the HTTP side is one of these, rendered by `error_response`: the REST
endpoint's (JSON or XML), the OAuth server's, /healthz's and a sip worker's.

    RestError                       500 INTERNAL_SERVER_ERROR
    ├── MethodNotFound              404 ERROR_METHOD_NOT_FOUND
    ├── NoAuthFound                 401 NO_AUTH_FOUND
    ├── InvalidCredentials          403 INVALID_CREDENTIALS
    ├── InvalidToken                401 invalid_token
    ├── ApplicationNotFound         401 APPLICATION_NOT_FOUND
    ├── ExpiredToken                401 expired_token
    ├── InsufficientScope           403 insufficient_scope (webhook or access token wording)
    ├── AuthorizationError          401 authorization_error
    ├── UserAccessError             403 user_access_error
    ├── PortalDeleted               403 PORTAL_DELETED
    ├── QueryLimitExceeded          503 QUERY_LIMIT_EXCEEDED
    ├── OperationTimeLimit          429 OPERATION_TIME_LIMIT
    ├── DatabaseUnavailable         503 DATABASE_UNAVAILABLE (the store is down: endpoint.wire_error)
    ├── ArgumentError               400 ERROR_ARGUMENT
    ├── RequestTooLarge             413 ERROR_ARGUMENT
    ├── RequestTimeout              408 REQUEST_TIMEOUT (written by request_deadline.py, not by a handler)
    ├── InvalidRequest              400 invalid_request      ┐
    ├── InvalidClient               401 invalid_client       │ the OAuth server's
    ├── InvalidGrant                400 invalid_grant        │ (docs/behaviour.md#oauth-token-errors)
    ├── InvalidScope                400 invalid_scope        │
    └── PaymentRequired             400 PAYMENT_REQUIRED     ┘

Errors of the telephony rules carry no wire code; TELEPHONY_ERRORS maps them, and a
method may override the mapping for itself (docs/behaviour.md#telephony-methods gives the same "not
found" a different status in `update`, `delete` and `line.outgoing.sip.set`). The OAuth
refusals of accounts/oauth.py carry none either; OAUTH_ERRORS maps them, and EVENT_ERRORS the errors
of the events rules (docs/behaviour.md#event-bind, docs/behaviour.md#event-offline).
"""

from __future__ import annotations

from starlette.responses import Response

from sipline.accounts import oauth
from sipline.events import errors as ev
from sipline.rest.envelope import respond
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


class InvalidToken(RestError):
    code, status, description = "invalid_token", 401, "The access token provided is invalid."


class ApplicationNotFound(RestError):
    code, status, description = "APPLICATION_NOT_FOUND", 401, "Application not found"


class ExpiredToken(RestError):
    code, status, description = "expired_token", 401, "The access token provided has expired"


class InsufficientScope(RestError):
    code, status = "insufficient_scope", 403
    description = "The request requires higher privileges than provided by the webhook token"

    @classmethod
    def for_token(cls) -> InsufficientScope:
        return cls("The request requires higher privileges than provided by the access token")


class AuthorizationError(RestError):
    code, status, description = "authorization_error", 401, "Unable to authorize user"


class UserAccessError(RestError):
    code, status, description = "user_access_error", 403, "The user does not have access to the application."


class PortalDeleted(RestError):
    code, status, description = "PORTAL_DELETED", 403, "Portal was deleted"


class QueryLimitExceeded(RestError):
    code, status, description = "QUERY_LIMIT_EXCEEDED", 503, "Too many requests"


class OperationTimeLimit(RestError):
    code, status, description = "OPERATION_TIME_LIMIT", 429, "Method is blocked due to operation time limit."


class DatabaseUnavailable(RestError):
    code, status, description = "DATABASE_UNAVAILABLE", 503, "Database unreachable, try again"


class ArgumentError(RestError):
    code, status = "ERROR_ARGUMENT", 400

    def __init__(self, description: str, *, argument: str | None = None) -> None:
        super().__init__(description, **({"argument": argument} if argument else {}))


class RequestTooLarge(RestError):
    code, status = "ERROR_ARGUMENT", 413


class RequestTimeout(RestError):
    code, status = "REQUEST_TIMEOUT", 408


class InvalidRequest(RestError):
    code, status, description = "invalid_request", 400, "Invalid request"


class InvalidClient(RestError):
    code, status, description = "invalid_client", 401, "Invalid client credentials"


class InvalidGrant(RestError):
    code, status, description = "invalid_grant", 400, "Invalid grant"


class InvalidScope(RestError):
    code, status, description = "invalid_scope", 400, "The requested scope exceeds what the application has"


class PaymentRequired(RestError):
    code, status, description = "PAYMENT_REQUIRED", 400, "Payment required"


WireMapping = tuple[str, int]

TELEPHONY_ERRORS: dict[type[tel.TelephonyError], WireMapping] = {
    tel.AccessDenied: ("ACCESS_DENIED", 403),
    tel.CheckFieldsError: ("CHECK_FIELDS_ERROR", 400),
    tel.MaxCloudPbx: ("MAX_CLOUD_PBX", 400),
    tel.MaxLines: ("MAX_SIP_LINES", 400),  # [R] after MAX_CLOUD_PBX
    tel.TitleExists: ("TITLE_EXISTS", 400),
    tel.LineNotFound: ("ERROR_NOT_FOUND", 404),
    tel.RegistrationNotFound: ("REG_ID_NOT_FOUND", 400),
    tel.UnknownFilterField: ("ERROR_CORE", 400),
    tel.InvalidArgument: ("ERROR_ARGUMENT", 400),
}


def to_rest_error(error: tel.TelephonyError, overrides: dict[type[tel.TelephonyError], WireMapping]) -> RestError:
    code, status = overrides.get(type(error)) or TELEPHONY_ERRORS[type(error)]
    wire = RestError(str(error))
    wire.code, wire.status = code, status
    return wire


OAUTH_ERRORS: dict[type[oauth.OAuthRefusal], type[RestError]] = {
    oauth.MalformedRequest: InvalidRequest,
    oauth.UnknownClient: InvalidClient,
    oauth.UserRefused: UserAccessError,
    oauth.UnusableGrant: InvalidGrant,
    oauth.ScopeTooWide: InvalidScope,
    oauth.PortalUnpaid: PaymentRequired,
}


def oauth_rest_error(error: oauth.OAuthRefusal) -> RestError:
    return OAUTH_ERRORS[type(error)](str(error))


EVENT_ERRORS: dict[type[ev.EventError], WireMapping] = {
    ev.AccessDenied: ("ACCESS_DENIED", 403),
    ev.EventNotFound: ("ERROR_EVENT_NOT_FOUND", 400),
    ev.ArgumentNull: ("ERROR_ARGUMENT", 400),
    ev.InvalidArgument: ("ERROR_ARGUMENT", 400),
    ev.WrongHandlerUrl: ("ERROR_WRONG_HANDLER_URL", 400),
    ev.UnsupportedScheme: ("ERROR_UNSUPPORTED_PROTOCOL", 400),
    ev.HandlerExists: ("ERROR_CORE", 400),
}


def event_rest_error(error: ev.EventError) -> RestError:
    """An argument error names its argument, as ArgumentError does."""
    argument = getattr(error, "argument", None)
    wire = RestError(str(error), **({"argument": argument} if argument else {}))
    wire.code, wire.status = EVENT_ERRORS[type(error)]
    return wire


def error_body(error: RestError) -> dict[str, str]:
    """docs/behaviour.md#rest-errors: the one shape of every error answer."""
    return {"error": error.code, "error_description": error.description, **error.extra}


def error_response(error: RestError, transport: str = "json") -> Response:
    """The one rendering of an error answer on the HTTP side (`transport`: json or xml)."""
    return respond(error_body(error), error.status, transport)
