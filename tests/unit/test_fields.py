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


def test_digest_algorithms_of_office_lines_are_canonical_and_checked_last():
    fields = check_new_line("office", None, "h.example", "u", None, " sha-256 ,MD5")
    assert fields.digest_algorithms == "SHA-256,MD5"
    assert check_new_line("office", None, "h.example", "u", None).digest_algorithms is None
    assert messages(check_new_line, "office", None, "", "u", None, "SHA-1") == [
        "Server address not specified",
        "Digest algorithms must be a comma-separated list of MD5, SHA-256, SHA-512-256.",
    ]
    assert messages(check_new_line, "cloud", None, "h.example", "u", None, "MD5") == [
        "Digest algorithms apply to office lines only."]
    for repeated in ("MD5,MD5", "MD5,", "MD5-sess", ""):
        assert messages(check_new_line, "office", None, "h.example", "u", None, repeated)


def test_an_empty_digest_algorithms_change_returns_to_the_portals_choice():
    assert check_changes(None, None, None, None, None, "", line_type=LineType.OFFICE).digest_algorithms == ""
    assert check_changes(None, None, None, None, None, "sha-256", line_type=LineType.OFFICE
                         ).digest_algorithms == "SHA-256"
    assert check_changes(None, None, None, None, None, None, line_type=LineType.CLOUD).digest_algorithms is None
    assert messages(check_changes, None, None, None, None, None, "MD5") == [
        "Digest algorithms apply to office lines only."]
