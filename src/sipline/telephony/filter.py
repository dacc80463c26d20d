"""FILTER, SORT and ORDER of voximplant.sip.get (voximplant-sip.md §4.1–4.2).

A FILTER key is `OP FIELD`: OP is the leading run of non-letters, as Bitrix24
splits it. Every condition is a positive test, optionally negated: `!` of any
test is "not that test", so NULL fails every positive test and passes every
negated one (`!TITLE`, `!%TITLE`, `!><REG_ID` all match a NULL). Text compares
case-insensitively (Bitrix24's MySQL collation), integer fields numerically.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from sipline import php
from sipline.store.records import Line
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
class Condition:
    field: str
    test: str
    negated: bool
    operands: tuple[object, ...]  # normalised: int, casefolded str, or EMPTY
    is_list: bool

    def matches(self, line: Line) -> bool:
        getter, is_int = FIELDS[self.field]
        value = getter(line)
        return self.negated != _TESTS[self.test](_comparable(value, is_int), self)


def parse_filter(raw: object) -> list[Condition]:
    """Conditions of a FILTER value; anything but an array means no filter.

    A plain `APP_ID` key is dropped: the caller's own APP_ID is forced (§4 step 2).

    Raises:
        UnknownFilterField: a key names no field or an unknown operator.
        InvalidArgument: a value of the wrong shape (`><` needs two bounds).
    """
    if isinstance(raw, list):
        raw = {str(index): value for index, value in enumerate(raw)}
    if not isinstance(raw, dict):
        return []
    conditions = []
    for key, value in raw.items():
        op, field = _KEY.match(key.upper()).groups()  # type: ignore[union-attr]
        if field not in FIELDS:
            raise UnknownFilterField(f"Unknown field definition `{field}` ({key}) for Sip Entity.")
        if op not in OPERATORS:
            raise UnknownFilterField(f"Unknown filter operation `{op}` ({key}) for Sip Entity.")
        if field == "APP_ID" and op in ("", "="):
            continue
        conditions.append(_condition(key, field, op, value))
    return conditions


def _condition(key: str, field: str, op: str, value: object) -> Condition:
    test, negated = OPERATORS[op]
    is_int = FIELDS[field][1]
    is_list = isinstance(value, (list, dict))
    items = list(value.values()) if isinstance(value, dict) else value if is_list else [value]
    if any(not (item is None or php.is_scalar(item)) for item in items):  # type: ignore[union-attr]
        raise InvalidArgument(f"Filter {key}: values must be scalars")
    if test == "between" and (not is_list or len(items) != 2):  # type: ignore[arg-type]
        raise InvalidArgument(f"Filter {key} needs a list of two values [min, max]")
    operands = tuple(_operand(item, is_int, test) for item in items)  # type: ignore[union-attr]
    return Condition(field, test, negated, operands, is_list)


def _operand(item: object, is_int: bool, test: str) -> object:
    if item is None or item == "":
        return EMPTY
    if is_int and test not in ("like", "search"):
        return php.intval(item)
    return php.strval(item).casefold()  # type: ignore[arg-type]


def _comparable(value: Value, is_int: bool) -> Value:
    if value is None or is_int:
        return value
    return value.casefold()  # type: ignore[union-attr]


def _eq(value: Value, condition: Condition) -> bool:
    return any(
        (value is None or value == "") if operand is EMPTY else value == operand
        for operand in condition.operands
    )


def _ordered(compare: Callable[[object, object], bool]) -> Callable[[Value, Condition], bool]:
    def test(value: Value, condition: Condition) -> bool:
        if value is None:
            return False
        return any(
            operand is not EMPTY and _same_kind(value, operand) and compare(value, operand)
            for operand in condition.operands
        )

    return test


def _between(value: Value, condition: Condition) -> bool:
    low, high = condition.operands
    if value is None or low is EMPTY or high is EMPTY:
        return False
    return _same_kind(value, low) and _same_kind(value, high) and low <= value <= high  # type: ignore[operator]


def _like(value: Value, condition: Condition) -> bool:
    if value is None:
        return False
    text = str(value).casefold()
    return any(operand is not EMPTY and operand in text for operand in condition.operands)  # type: ignore[operator]


def _search(value: Value, condition: Condition) -> bool:
    if value is None:
        return False
    text = str(value).casefold()
    return any(
        alternative in text
        for operand in condition.operands
        if operand is not EMPTY
        for alternative in str(operand).split("|")
        if alternative
    )


def _same_kind(value: object, operand: object) -> bool:
    return isinstance(value, int) == isinstance(operand, int)


_TESTS: dict[str, Callable[[Value, Condition], bool]] = {
    "eq": _eq,
    "gt": _ordered(lambda a, b: a > b),  # type: ignore[operator]
    "ge": _ordered(lambda a, b: a >= b),  # type: ignore[operator]
    "lt": _ordered(lambda a, b: a < b),  # type: ignore[operator]
    "le": _ordered(lambda a, b: a <= b),  # type: ignore[operator]
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
