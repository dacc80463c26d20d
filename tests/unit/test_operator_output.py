"""What operator commands print (cli/output.py) and which scopes they take (accounts/portals.py)."""

from __future__ import annotations

import json

import pytest

from sipline.accounts.portals import KNOWN_SCOPES, BadAccountValue, parse_scopes
from sipline.cli.output import Table
from sipline.rest.registry import METHODS

TABLE = Table(("ID", "NAME", "CODE", "OK"), [
    {"ID": 7, "NAME": "Main trunk", "CODE": 200, "OK": True},
    {"ID": 12, "NAME": "", "CODE": None, "OK": False},
])


def test_a_table_has_a_header_row_and_a_cell_in_every_column():
    assert TABLE.render(as_json=False).splitlines() == [
        "ID  NAME        CODE  OK",
        "7   Main trunk  200   yes",
        "12  -           -     no",
    ]


def test_json_has_the_table_s_keys_and_the_values_as_they_are():
    assert json.loads(TABLE.render(as_json=True)) == [
        {"ID": 7, "NAME": "Main trunk", "CODE": 200, "OK": True},
        {"ID": 12, "NAME": "", "CODE": None, "OK": False},
    ]


def test_an_empty_list_is_its_header_or_an_empty_array():
    empty = Table(("ID", "NAME"), [])
    assert empty.render(as_json=False) == "ID  NAME" and empty.render(as_json=True) == "[]"


def test_scopes_are_bitrix24_s_normalised():
    assert parse_scopes(" Telephony, user,telephony ") == "telephony,user"
    assert parse_scopes("crm.documentgenerator,user_brief") == "crm.documentgenerator,user_brief"


@pytest.mark.parametrize(("text", "said"), [("telephny", "unknown 'telephny'"), (" , ", "names no scope"),
                                            ("telephony,crn,xyz", "unknown 'crn', 'xyz'")])
def test_an_unknown_scope_is_refused_with_the_known_ones(text, said):
    with pytest.raises(BadAccountValue, match=said) as refused:
        parse_scopes(text)
    if "unknown" in said:
        assert str(refused.value).endswith("known scopes: " + ", ".join(sorted(KNOWN_SCOPES)))


def test_every_scope_sipline_serves_is_a_known_one():
    assert {method.scope for method in METHODS.values() if method.scope is not None} <= KNOWN_SCOPES
