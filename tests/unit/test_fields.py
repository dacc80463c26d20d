import pytest

from sipline.store.records import LineType
from sipline.telephony.errors import CheckFieldsError
from sipline.telephony.fields import check_changes, check_new_line


def messages(call, *args) -> list[str]:
    with pytest.raises(CheckFieldsError) as caught:
        call(*args)
    return caught.value.messages


def test_new_line_defaults_and_cleaning():
    fields = check_new_line(None, " t ", " http://h.example ", " u ", " p ")
    assert (fields.type, fields.title, fields.server, fields.login, fields.password) == (
        LineType.CLOUD, "t", "h.example", "u", "p"
    )
    assert check_new_line("Office", None, "h.example", "u", None).type is LineType.OFFICE


def test_messages_in_documented_order():
    assert messages(check_new_line, "", "t\n", None, None, "x" * 101) == [
        "PBX type is not specified.",
        "Server address not specified",
        "Login for connecting to the server not specified",
        "Password for connecting to the server cannot exceed 100 characters",
        "Connection name must not contain control characters.",
    ]


def test_changes_check_only_what_is_given():
    fields = check_changes(None, "x", None, None, None)
    assert (fields.title, fields.server, fields.login) == ("x", None, None)
    assert messages(check_changes, "office ", None, "", None, None) == [
        "PBX type is not specified.",
        "Server address not specified",
    ]
    assert check_changes("office", None, None, None, None).type is LineType.OFFICE


def test_title_length():
    assert messages(check_new_line, None, "t" * 256, "h.example", "u", None) == [
        "Connection name must not exceed 255 characters."
    ]
