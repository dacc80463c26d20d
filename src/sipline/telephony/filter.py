"""FILTER, SORT and ORDER of voximplant.sip.get (docs/behaviour.md#sip-get-filter, docs/behaviour.md#sip-get-sort).

A FILTER key is `OP FIELD`: OP is the leading run of non-letters, as Bitrix24
splits it. Every condition is a positive test, optionally negated: `!` of any
test is "not that test", so NULL fails every positive test and passes every
negated one (`!TITLE`, `!%TITLE`, `!><REG_ID` all match a NULL). Text compares
case-insensitively (Bitrix24's MySQL collation), integer fields numerically.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sipline.store.records import Line
from sipline.telephony import php_values
from sipline.telephony.errors import InvalidArgument, UnknownFilterField

Value = int | str | None

# field → (getter, is_integer)
FIELDS: dict[str, tuple[Callable[[Line], Value], bool]] = {
    "ID": (lambda line: line.id, True),
    "TYPE": (lambda line: line.type.value, False),
    "TITLE": (lambda line: line.title, False),
    "CONFIG_ID": (lambda line: line.config_id, True),
    "REG_ID": (lambda line: line.reg_id, True),
    "APP_ID": (lambda line: line.app_id, False),
    "SERVER": (lambda line: line.server, False),
    "LOGIN": (lambda line: line.login, False),
    "PASSWORD": (lambda line: line.password, False),
    "INCOMING_SERVER": (lambda line: line.incoming_server, False),
    "INCOMING_LOGIN": (lambda line: line.incoming_login, False),
    "INCOMING_PASSWORD": (lambda line: line.incoming_password, False),
    "AUTH_USER": (lambda line: line.auth_user, False),
    "OUTBOUND_PROXY": (lambda line: line.outbound_proxy, False),
    "DETECT_LINE_NUMBER": (lambda line: line.detect_line_number, False),
    "LINE_DETECT_HEADER_ORDER": (lambda line: line.line_detect_header_order, False),
    "REGISTRATION_STATUS_CODE": (lambda line: line.registration_status_code, True),
    "REGISTRATION_ERROR_MESSAGE": (lambda line: line.registration_error_message, False),
}

# OP → (test, negated). `@`/`!@` are the ORM's IN / NOT IN, the same as `=`/`!` here.
OPERATORS: dict[str, tuple[str, bool]] = {
    "": ("eq", False),
    "=": ("eq", False),
    "@": ("eq", False),
    "!": ("eq", True),
    "!=": ("eq", True),
    "!@": ("eq", True),
    ">": ("gt", False),
    ">=": ("ge", False),
    "<": ("lt", False),
    "<=": ("le", False),
    "><": ("between", False),
    "!><": ("between", True),
    "%": ("like", False),
    "!%": ("like", True),
    "?": ("search", False),
}

_KEY = re.compile(r"([^A-Za-z]*)(.*)", re.DOTALL)
EMPTY = object()  # the operand null or "": "field is NULL or empty"


@dataclass(frozen=True)
class FilterLimits:
    """How much one FILTER may ask for; each value is one test of every line.

    The work of a call is lines × terms. 500 values hold the CONFIG_IDs of ten pages (the usual
    "these lines" list a client sends); 1,000 in all is what a form request can carry at all
    (PHP's max_input_vars, MAX_INPUT_VARS in rest/php_variables.py), so only JSON bodies meet this
    bound. 1,000 terms over a full portal (1,000 lines, README) are a million substring tests,
    about 50 ms of CPU, given back to the event loop in 2 ms slices.
    """

    values_per_list: int = 500
    terms: int = 1000
    batch_terms: int = 5000  # in all sip.get of one batch: five calls' worth of the heaviest filter


class TermBudget:
    """The FILTER values the calls of one batch may still use together (FilterLimits.batch_terms)."""

    def __init__(self, terms: int) -> None:
        self.total = terms
        self.left = terms

    def spend(self, terms: int) -> None:
        """Raises: InvalidArgument when the batch has fewer left; nothing is spent then."""
        if terms > self.left:
            raise InvalidArgument(f"batch: more than {self.total} FILTER values in all of its calls")
        self.left -= terms


Test = Callable[[Value], bool]


@dataclass(frozen=True)
class Condition:
    field: str
    negated: bool
    test: Test  # the positive test, of the line's comparable value
    terms: int  # the values it compares with (a `?` alternative counts as one)

    def matches(self, line: Line) -> bool:
        getter, is_int = FIELDS[self.field]
        return self.negated != self.test(_comparable(getter(line), is_int))


def parse_filter(
    raw: object, limits: FilterLimits = FilterLimits(), budget: TermBudget | None = None
) -> list[Condition]:
    """Conditions of a FILTER value; anything but an array means no filter.

    A plain `APP_ID` key is dropped: the caller's own APP_ID is forced (docs/behaviour.md#sip-get step 2).

    Raises:
        UnknownFilterField: a key names no field or an unknown operator.
        InvalidArgument: a value of the wrong shape (`><` needs two bounds), or more values than
            `limits` allow, in one list or in all, or than the batch's `budget` has left.
    """
    if isinstance(raw, list):
        raw = {str(index): value for index, value in enumerate(raw)}
    if not isinstance(raw, dict):
        return []
    conditions, terms = [], 0
    for key, value in raw.items():
        op, field = _KEY.match(key.upper()).groups()  # type: ignore[union-attr]
        if field not in FIELDS:
            raise UnknownFilterField(f"Unknown field definition `{field}` ({key}) for Sip Entity.")
        if op not in OPERATORS:
            raise UnknownFilterField(f"Unknown filter operation `{op}` ({key}) for Sip Entity.")
        if field == "APP_ID" and op in ("", "="):
            continue
        size = _size(key, op, _items(value), limits)
        if terms + size > limits.terms:
            raise InvalidArgument(f"FILTER: more than {limits.terms} values in all")
        terms += size
        conditions.append(_condition(key, field, op, value, size))
    if budget is not None:
        budget.spend(terms)
    return conditions


def _items(value: object) -> list[object]:
    if isinstance(value, dict):
        return list(value.values())
    return value if isinstance(value, list) else [value]


def _size(key: str, op: str, items: list[object], limits: FilterLimits) -> int:
    """The terms of one FILTER entry (at least one), counted before any is converted.

    Raises: InvalidArgument past the values of one list.
    """
    terms = len(items)
    if OPERATORS[op][0] == "search":
        terms += sum(item.count("|") for item in items if isinstance(item, str))
    if terms > limits.values_per_list:
        raise InvalidArgument(f"Filter {key}: more than {limits.values_per_list} values in one list")
    return max(terms, 1)


def _condition(key: str, field: str, op: str, value: object, terms: int) -> Condition:
    test, negated = OPERATORS[op]
    is_int = FIELDS[field][1]
    items = _items(value)
    if any(not (item is None or php_values.is_scalar(item)) for item in items):
        raise InvalidArgument(f"Filter {key}: values must be scalars")
    if test == "between" and (not isinstance(value, (list, dict)) or len(items) != 2):
        raise InvalidArgument(f"Filter {key} needs a list of two values [min, max]")
    operands = tuple(_operand(item, is_int, test) for item in items)
    return Condition(field, negated, _TESTS[test](operands), terms)


def _operand(item: object, is_int: bool, test: str) -> object:
    if item is None or item == "":
        return EMPTY
    if is_int and test not in ("like", "search"):
        return php_values.intval(item)
    return php_values.strval(item).casefold()  # type: ignore[arg-type]


def _comparable(value: Value, is_int: bool) -> Value:
    if value is None or is_int:
        return value
    return value.casefold()  # type: ignore[union-attr]


# Each builder turns the operands into one test, built once per call, so that a line costs a
# set lookup, one comparison per kind, or one pass of C-level substring searches.


def _eq(operands: tuple[object, ...]) -> Test:
    wanted = frozenset(operand for operand in operands if operand is not EMPTY)
    empty_wanted = any(operand is EMPTY for operand in operands)
    return lambda value: value in wanted or (empty_wanted and (value is None or value == ""))


def _ordered(compare: Callable[[Any, Any], bool], loosest: Callable[..., object]) -> Callable[..., Test]:
    """`any operand satisfies compare`: the same as comparing with the loosest operand of the
    value's kind (integers and text never compare with each other), so `compare` (operator.gt, ...)
    only ever meets two ints or two strs."""

    def build(operands: tuple[object, ...]) -> Test:
        ints = [operand for operand in operands if isinstance(operand, int)]
        texts = [operand for operand in operands if operand is not EMPTY and not isinstance(operand, int)]
        bounds = {True: loosest(ints) if ints else None, False: loosest(texts) if texts else None}

        def test(value: Value) -> bool:
            bound = None if value is None else bounds[isinstance(value, int)]
            return bound is not None and compare(value, bound)

        return test

    return build


def _between(operands: tuple[object, ...]) -> Test:
    low, high = operands

    def test(value: Value) -> bool:
        if value is None or low is EMPTY or high is EMPTY:
            return False
        return _same_kind(value, low) and _same_kind(value, high) and low <= value <= high  # type: ignore[operator]

    return test


def _like(operands: tuple[object, ...]) -> Test:
    return _contains_any(tuple(str(operand) for operand in operands if operand is not EMPTY))


def _search(operands: tuple[object, ...]) -> Test:
    return _contains_any(
        tuple(
            alternative
            for operand in operands
            if operand is not EMPTY
            for alternative in str(operand).split("|")
            if alternative
        )
    )


def _contains_any(needles: tuple[str, ...]) -> Test:
    def test(value: Value) -> bool:
        if value is None:
            return False
        return any(map(str(value).casefold().__contains__, needles))

    return test


def _same_kind(value: object, operand: object) -> bool:
    return isinstance(value, int) == isinstance(operand, int)


_TESTS: dict[str, Callable[[tuple[object, ...]], Test]] = {
    "eq": _eq,
    "gt": _ordered(operator.gt, min),
    "ge": _ordered(operator.ge, min),
    "lt": _ordered(operator.lt, max),
    "le": _ordered(operator.le, max),
    "between": _between,
    "like": _like,
    "search": _search,
}


@dataclass(frozen=True)
class SortOrder:
    field: str
    descending: bool

    def key(self, line: Line) -> tuple[bool, Value]:
        """NULLs first in ascending order, as MySQL sorts them."""
        getter, is_int = FIELDS[self.field]
        value = _comparable(getter(line), is_int)
        return (value is not None, value if value is not None else 0)


def parse_sort(sort: object, order: object) -> SortOrder | None:
    """The order to apply when SORT and ORDER are both strings, else None (CONFIG_ID order).

    Sorting is stable over CONFIG_ID order, so CONFIG_ID ASC breaks ties.

    Raises:
        UnknownFilterField: SORT names no field.
        InvalidArgument: ORDER is neither ASC nor DESC.
    """
    if not (isinstance(sort, str) and isinstance(order, str) and sort):
        return None
    field = sort.upper()
    if field not in FIELDS:
        raise UnknownFilterField(f"Unknown field definition `{field}` ({sort}) for Sip Entity.")
    if order.upper() not in ("ASC", "DESC"):
        raise InvalidArgument(f'Invalid order "{order}"')
    return SortOrder(field, order.upper() == "DESC")
