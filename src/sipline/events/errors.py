"""Errors of the events rules. Each names the rule that failed; rest/errors.py maps them to wire codes.

EventError
├── AccessDenied       the caller may not do this (a non-admin user, a webhook of one)
├── EventNotFound      no such event in the caller's scopes
├── ArgumentNull       a required parameter is missing or empty
├── InvalidArgument    a parameter of the wrong form or size; names the parameter
├── WrongHandlerUrl    HANDLER is not a URL sipline may post to (docs/behaviour.md#event-bind)
├── UnsupportedScheme  HANDLER's scheme is neither http nor https
└── HandlerExists      the owner has this handler bound already
"""

from __future__ import annotations


class EventError(Exception):
    """Base class; str(error) is the description shown to the client."""


class AccessDenied(EventError):
    def __init__(self, reason: str = "") -> None:
        super().__init__("Access denied!" + (f" {reason}" if reason else ""))


class EventNotFound(EventError):
    def __init__(self) -> None:
        super().__init__("Event not found")


class ArgumentNull(EventError):
    def __init__(self, argument: str) -> None:
        self.argument = argument
        super().__init__(f"Argument '{argument}' is null or empty")


class InvalidArgument(EventError):
    def __init__(self, argument: str, message: str) -> None:
        self.argument = argument
        super().__init__(f"{argument}: {message}")


class WrongHandlerUrl(EventError):
    def __init__(self, reason: str) -> None:
        super().__init__(f"Wrong handler URL: {reason}")


class UnsupportedScheme(EventError):
    def __init__(self) -> None:
        super().__init__("Unsupported handler protocol")


class HandlerExists(EventError):
    def __init__(self) -> None:
        super().__init__("Unable to set event handler: Handler already binded")
