"""Errors of the telephony rules. Each names the rule that failed; rest/errors.py maps them to wire codes.

TelephonyError
├── AccessDenied          the user lacks "Manage numbers — modify"
├── CheckFieldsError      one or more field checks failed (messages in order)
├── MaxCloudPbx           the portal already has its limit of cloud lines
├── MaxLines              the portal already has its limit of lines, office and cloud
├── TitleExists           another line of the portal has this TITLE
├── LineNotFound          no line with this CONFIG_ID for this caller
├── RegistrationNotFound  no cloud registration with this REG_ID for this caller
├── UnknownFilterField    FILTER key or SORT names no field, or an unknown operator
└── InvalidArgument       a value of the wrong form (ORDER, `><` bounds) or size (FILTER)
"""


class TelephonyError(Exception):
    """Base class; str(error) is the description shown to the client."""


class AccessDenied(TelephonyError):
    def __init__(self) -> None:
        super().__init__("Access denied!")


class CheckFieldsError(TelephonyError):
    def __init__(self, messages: list[str]) -> None:
        self.messages = messages
        # Bitrix joins every failed check of one call with "<br> " [S].
        super().__init__("<br> ".join(messages))


class MaxCloudPbx(TelephonyError):
    def __init__(self, limit: int) -> None:
        super().__init__(f"You cannot connect more than {limit} virtual PBXs.")


class MaxLines(TelephonyError):
    def __init__(self, limit: int) -> None:
        super().__init__(f"You cannot connect more than {limit} SIP lines.")


class TitleExists(TelephonyError):
    def __init__(self) -> None:
        super().__init__("The specified connection name is already registered in the system")


class LineNotFound(TelephonyError):
    def __init__(self) -> None:
        super().__init__("Specified CONFIG_ID is not found")


class RegistrationNotFound(TelephonyError):
    def __init__(self) -> None:
        super().__init__("Settings not found")


class UnknownFilterField(TelephonyError):
    pass


class InvalidArgument(TelephonyError):
    pass
