"""PHP's parse_str rules and casts (docs/behaviour.md#rest-params)."""

from urllib.parse import quote_plus

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sipline.rest import php_variables
from sipline.telephony import php_values


def parse(text: str) -> dict:
    return php_variables.parse_query(text.encode())


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("a=1&b=2", {"a": "1", "b": "2"}),
        ("a=1&a=2", {"a": "2"}),
        ("a", {"a": ""}),
        ("a=b=c", {"a": "b=c"}),
        ("&&a=1&", {"a": "1"}),
        ("=x&[]=y", {}),
        ("a+b=1&a.c=2& d=3", {"a_b": "1", "a_c": "2", "d": "3"}),
        ("a[]=1&a[]=2", {"a": ["1", "2"]}),
        ("a[0]=1&a[2]=2", {"a": {"0": "1", "2": "2"}}),
        ("a[1]=x&a[0]=y", {"a": {"1": "x", "0": "y"}}),
        ("a[x][y][]=1&a[x][y][]=2&a[x][z]=3", {"a": {"x": {"y": ["1", "2"], "z": "3"}}}),
        ("a=1&a[]=2", {"a": ["2"]}),
        ("a[]=1&a=2", {"a": "2"}),
        ("a[b=1", {"a_b": "1"}),
        ("a[b.c d=1", {"a_b_c_d": "1"}),
        ("a[b][c=1", {"a": {"b": "1"}}),
        ("a[b]junk=1", {"a": {"b": "1"}}),
        ("a[ ]=1&a[ x]=2", {"a": {"0": "1", " x": "2"}}),
        ("FILTER%5B%3E%3DREG_ID%5D=5&FILTER[%25TITLE]=x+y", {"FILTER": {">=REG_ID": "5", "%TITLE": "x y"}}),
        ("a[5]=x&a[]=y", {"a": {"5": "x", "6": "y"}}),
        ("a[-1]=x&a[]=y", {"a": {"-1": "x", "0": "y"}}),
        ("a[01]=x", {"a": {"01": "x"}}),
        ("5=x", {"5": "x"}),
        ("t=%E2%9C%93", {"t": "\u2713"}),
    ],
)
def test_parse_str_examples(query, expected):
    assert parse(query) == expected


def test_not_utf8_is_refused():
    with pytest.raises(php_variables.NotUtf8):
        parse("a=%ff")


def test_nesting_and_variable_limits():
    assert parse("a" + "[x]" * 65 + "=1") == {}
    deep = parse("a" + "[x]" * 64 + "=1")["a"]
    for _ in range(63):
        deep = deep["x"]
    assert deep == {"x": "1"}
    assert len(parse("&".join(f"v{n}=1" for n in range(1500)))) == php_variables.MAX_INPUT_VARS


@pytest.mark.parametrize(
    ("value", "expected"),
    [("7abc", 7), ("abc", 0), (" 12", 12), ("-3", -3), ("+4", 4), ("1.9", 1), ("1e3", 1000), ("0x1A", 0),
     ("", 0), (3.9, 3), (-3.9, -3), (True, 1), (False, 0), (None, 0), ([], 0), ([1], 1),
     ("99999999999999999999", 2**63 - 1), (float("nan"), 0), ("1e400", 0)],
)
def test_intval(value, expected):
    assert php_values.intval(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"), [(True, "1"), (False, ""), (2.0, "2"), (0.5, "0.5"), (12, "12"), ("x", "x")]
)
def test_strval(value, expected):
    assert php_values.strval(value) == expected


@pytest.mark.parametrize(("value", "truth"), [("", False), ("0", False), (0, False), (None, False), ([], False),
                                              ("false", True), ("0.0", True), ("a", True), ([0], True)])
def test_truthy(value, truth):
    assert php_values.truthy(value) is truth


# A PHP value made of letter-named maps, lists and string leaves, and its http_build_query encoding.
names = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_", min_size=1, max_size=6)
leaves = st.text(max_size=8)
values = st.recursive(
    leaves,
    lambda inner: st.lists(inner, min_size=1, max_size=4) | st.dictionaries(names, inner, min_size=1, max_size=4),
    max_leaves=12,
)


def build_query(params: dict) -> str:
    pairs = []

    def walk(prefix, value):
        if isinstance(value, dict):
            for key, item in value.items():
                walk(f"{prefix}[{key}]", item)
        elif isinstance(value, list):
            for index, item in enumerate(value):
                walk(f"{prefix}[{index}]", item)
        else:
            pairs.append(f"{quote_plus(prefix, safe='[]')}={quote_plus(value)}")

    for key, value in params.items():
        walk(key, value)
    return "&".join(pairs)


@given(st.dictionaries(names, values, max_size=5))
def test_build_then_parse_round_trips(params):
    assert parse(build_query(params)) == params


@given(st.binary(max_size=200))
def test_any_bytes_parse_or_raise_not_utf8(data):
    try:
        result = php_variables.parse_query(data)
    except php_variables.NotUtf8:
        return
    assert isinstance(result, dict)
