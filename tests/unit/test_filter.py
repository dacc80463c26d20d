"""FILTER / SORT / ORDER of voximplant.sip.get (docs/behaviour.md#sip-get-filter, docs/behaviour.md#sip-get-sort), on records in memory."""

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sipline.store.records import Line, LineType
from sipline.telephony.errors import InvalidArgument, UnknownFilterField
from sipline.telephony.filter import FilterLimits, TermBudget, parse_filter, parse_sort

BASE = Line(id=1, config_id=1, portal_id=1, app_id="", type=LineType.CLOUD, title="Main", server="sip.example.net",
            login="100", password="secret", auth_user=None, outbound_proxy=None, detect_line_number="N",
            line_detect_header_order="diversion;to", reg_id=100001, incoming_login=None, incoming_password=None,
            registration_status_code=None, registration_error_message=None)
LINES = [
    BASE,
    replace(BASE, id=2, config_id=2, title="backup", login="200", reg_id=100002, registration_status_code=200,
            registration_error_message=""),
    replace(BASE, id=3, config_id=3, type=LineType.OFFICE, title="", login="300", reg_id=None,
            incoming_login="sip3", incoming_password="ab" * 16, incoming_server="pbx.test", password=None,
            registration_status_code=0),
    replace(BASE, id=4, config_id=4, title="50% off_", login="400", reg_id=100004, registration_status_code=502,
            registration_error_message="Unable to resolve hostname"),
]


def matching(filter_) -> list[int]:
    conditions = parse_filter(filter_)
    return [line.config_id for line in LINES if all(c.matches(line) for c in conditions)]


@pytest.mark.parametrize(
    ("filter_", "expected"),
    [
        ({}, [1, 2, 3, 4]),
        ({"CONFIG_ID": 2}, [2]),
        ({"=CONFIG_ID": "2"}, [2]),
        ({"config_id": "2abc"}, [2]),
        ({"CONFIG_ID": [1, "3"]}, [1, 3]),
        ({"CONFIG_ID": {"0": 1, "x": 4}}, [1, 4]),
        ({"CONFIG_ID": []}, []),
        ({"!CONFIG_ID": []}, [1, 2, 3, 4]),
        ({"!CONFIG_ID": [1, 2]}, [3, 4]),
        ({"!=CONFIG_ID": 1}, [2, 3, 4]),
        ({"@CONFIG_ID": [2, 3]}, [2, 3]),
        ({"!@CONFIG_ID": [2, 3]}, [1, 4]),
        ({">CONFIG_ID": 2}, [3, 4]),
        ({">=CONFIG_ID": 2}, [2, 3, 4]),
        ({"<CONFIG_ID": 2}, [1]),
        ({"<=CONFIG_ID": 2}, [1, 2]),
        ({">CONFIG_ID": [3, 1]}, [2, 3, 4]),
        ({"><CONFIG_ID": [2, 3]}, [2, 3]),
        ({"!><CONFIG_ID": [2, 3]}, [1, 4]),
        ({"TITLE": "MAIN"}, [1]),
        ({"TITLE": ""}, [3]),
        ({"TITLE": None}, [3]),
        ({"!TITLE": ""}, [1, 2, 4]),
        ({"%TITLE": "AC"}, [2]),
        ({"%TITLE": "%"}, [4]),
        ({"%TITLE": "_"}, [4]),
        ({"!%TITLE": "a"}, [3, 4]),
        ({"%LOGIN": ["1", "4"]}, [1, 4]),
        ({"?TITLE": "main|BACK"}, [1, 2]),
        ({"REG_ID": None}, [3]),
        ({"!REG_ID": None}, [1, 2, 4]),
        ({">REG_ID": 100001}, [2, 4]),
        ({"<REG_ID": 100003}, [1, 2]),
        ({"!REG_ID": 100001}, [2, 3, 4]),
        ({"REGISTRATION_STATUS_CODE": 0}, [3]),
        ({"REGISTRATION_ERROR_MESSAGE": ""}, [1, 2, 3]),
        ({"%REGISTRATION_ERROR_MESSAGE": "resolve"}, [4]),
        ({"%CONFIG_ID": "1"}, [1]),
        ({"TYPE": "OFFICE"}, [3]),
        ({"INCOMING_SERVER": "pbx.test"}, [3]),
        ({"PASSWORD": "SECRET"}, [1, 2, 4]),
        ({"INCOMING_LOGIN": "sip3", "TYPE": "office"}, [3]),
        ({"TYPE": "cloud", "<LOGIN": "300"}, [1, 2]),
        ({"APP_ID": "other"}, [1, 2, 3, 4]),
        ({"=APP_ID": "other"}, [1, 2, 3, 4]),
        ({"!APP_ID": ""}, []),
        ({"%APP_ID": "x"}, []),
        ({"DETECT_LINE_NUMBER": True}, []),
        ({"CONFIG_ID": True}, [1]),
        ([], [1, 2, 3, 4]),
        ("not-a-filter", [1, 2, 3, 4]),
        (7, [1, 2, 3, 4]),
    ],
)
def test_operators(filter_, expected):
    assert matching(filter_) == expected


@pytest.mark.parametrize("key", ["NOPE", "~TITLE", "=%TITLE", "", "123", "!!TITLE", "TITLE "])
def test_unknown_field_or_operator(key):
    with pytest.raises(UnknownFilterField):
        parse_filter({key: 1})


def test_a_non_empty_list_filter_names_no_field():
    with pytest.raises(UnknownFilterField):
        parse_filter(["x"])


@pytest.mark.parametrize("filter_", [{"><CONFIG_ID": 1}, {"><CONFIG_ID": [1]}, {"!><CONFIG_ID": [1, 2, 3]},
                                     {"CONFIG_ID": [[1]]}, {"TITLE": {"a": {"b": 1}}}])
def test_malformed_values(filter_):
    with pytest.raises(InvalidArgument):
        parse_filter(filter_)


def sort(field, order) -> list[int]:
    spec = parse_sort(field, order)
    lines = LINES if spec is None else sorted(LINES, key=spec.key, reverse=spec.descending)
    return [line.config_id for line in lines]


def test_sort():
    assert sort("TITLE", "ASC") == [3, 4, 2, 1]
    assert sort("title", "desc") == [1, 2, 4, 3]
    assert sort("REG_ID", "ASC") == [3, 1, 2, 4]  # NULL first, as MySQL
    assert sort("REG_ID", "DESC") == [4, 2, 1, 3]
    assert sort("TYPE", "ASC") == [1, 2, 4, 3]  # CONFIG_ID breaks ties
    assert sort("TYPE", "DESC") == [3, 1, 2, 4]
    assert sort("TITLE", None) == [1, 2, 3, 4]
    assert sort(None, "DESC") == [1, 2, 3, 4]
    assert sort("TITLE", {"ID": "ASC"}) == [1, 2, 3, 4]
    assert sort("", "ASC") == [1, 2, 3, 4]
    with pytest.raises(UnknownFilterField):
        parse_sort("NOPE", "ASC")
    with pytest.raises(InvalidArgument):
        parse_sort("TITLE", "UP")


scalars = st.none() | st.booleans() | st.integers(-5, 100005) | st.text(max_size=5)
fields = st.sampled_from(["TITLE", "CONFIG_ID", "REG_ID", "LOGIN", "PASSWORD", "INCOMING_LOGIN"])


@given(st.sampled_from(["", "%", "@"]), fields, scalars | st.lists(scalars, max_size=3))
def test_negation_is_the_complement(op, field, value):
    """`!X` matches exactly the lines `X` does not, NULLs included."""
    positive = set(matching({op + field: value}))
    negated = set(matching({"!" + op + field: value}))
    assert positive | negated == {1, 2, 3, 4} and not positive & negated


@given(fields, st.lists(st.integers(-5, 100005) | st.text(max_size=3), min_size=2, max_size=2))
def test_between_negation_is_the_complement(field, bounds):
    positive = set(matching({"><" + field: bounds}))
    negated = set(matching({"!><" + field: bounds}))
    assert positive | negated == {1, 2, 3, 4} and not positive & negated


# --- bounds on the work one call may ask for ---

LIMITS = FilterLimits(values_per_list=3, terms=5, batch_terms=8)


@pytest.mark.parametrize("filter_", [
    {"CONFIG_ID": [1, 2, 3, 4]},
    {"%TITLE": {"a": "x", "b": "y", "c": "z", "d": "w"}},
    {"?TITLE": "a|b|c|d"},
    {"?TITLE": ["a|b", "c|d"]},
])
def test_a_filter_list_over_its_limit_is_refused(filter_):
    with pytest.raises(InvalidArgument, match="more than 3 values in one list"):
        parse_filter(filter_, LIMITS)


@pytest.mark.parametrize("filter_", [
    {"CONFIG_ID": [1, 2, 3], "!ID": [1, 2, 3]},
    {"CONFIG_ID": [1, 2, 3], "?TITLE": "a|b|c"},
    # an empty list is no work, but each key is still one term: no unbounded number of keys
    {"config_id": [], "Config_Id": [], "CONFIG_id": [], "conFIG_ID": [], "CONFIG_ID": [], "cONFIG_ID": []},
])
def test_a_filter_over_its_limit_in_all_is_refused(filter_):
    with pytest.raises(InvalidArgument, match="more than 5 values in all"):
        parse_filter(filter_, LIMITS)


def test_filters_at_their_limits_still_match_as_before():
    assert [c.terms for c in parse_filter({"CONFIG_ID": [1, 2, 3], "?TITLE": "a|b"}, LIMITS)] == [3, 2]
    assert matching({"CONFIG_ID": list(range(500)), "!%TITLE": ["zz"] * 500}) == [1, 2, 3, 4]
    with pytest.raises(InvalidArgument):
        matching({"CONFIG_ID": list(range(501))})  # the default: 500 a list, 1,000 in all


def test_a_batch_budget_is_spent_by_each_call_and_refuses_past_it():
    budget = TermBudget(LIMITS.batch_terms)
    parse_filter({"CONFIG_ID": [1, 2, 3], "!ID": [1, 2]}, LIMITS, budget)
    parse_filter({"CONFIG_ID": [1, 2, 3]}, LIMITS, budget)
    with pytest.raises(InvalidArgument, match="batch: more than 8 FILTER values"):
        parse_filter({"CONFIG_ID": [1]}, LIMITS, budget)
    assert budget.left == 0
    parse_filter({}, LIMITS, budget)  # no FILTER, no cost


@given(st.sampled_from([">", ">=", "<", "<="]), fields, st.lists(scalars, max_size=4))
def test_an_ordered_list_matches_when_any_of_its_values_does(op, field, values):
    """The loosest bound stands for the whole list (the test is built once, not run per value)."""
    one_by_one = set().union(*(matching({op + field: value}) for value in values)) if values else set()
    assert set(matching({op + field: values})) == one_by_one
