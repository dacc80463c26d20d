"""PHP's scalar casts and truthiness, as Bitrix24 applies them to parameter values.

Bitrix24 runs on PHP, so a FILTER value, a flag or an id means what PHP's (string),
(int) and boolean casts make of it; how the values arrive is the wire's business
(rest/php_variables.py).
"""

from __future__ import annotations

import math
import re
from typing import TypeGuard

Scalar = str | int | float | bool
INT64 = 2**63  # PHP_INT_MAX + 1 on 64-bit builds
# PHP 8 numeric-prefix rule for (int)"…": leading whitespace, sign, digits, fraction, exponent.
_NUMERIC_PREFIX = re.compile(r"[ \t\n\r\v\f]*([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)")


def is_scalar(value: object) -> TypeGuard[Scalar]:
    return isinstance(value, (str, int, float, bool))


def strval(value: Scalar) -> str:
    """PHP (string) cast of a scalar: true → "1", false → "", 2.0 → "2"."""
    if isinstance(value, bool):
        return "1" if value else ""
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return repr(value).replace("e+", "E+").replace("e-", "E-")
    return str(value)


def intval(value: object) -> int:
    """PHP (int) cast: "7abc" → 7, "abc" → 0, 3.9 → 3, true → 1; clamped to int64."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        number = value
    elif isinstance(value, float):
        number = 0 if math.isnan(value) or math.isinf(value) else int(value)
    elif isinstance(value, str):
        match = _NUMERIC_PREFIX.match(value)
        if not match:
            return 0
        text = match.group(1)
        number = _decimal(text) if text.lstrip("+-").isdigit() else _float_to_int(float(text))
    elif isinstance(value, (list, dict)):
        return 1 if value else 0
    else:
        return 0
    return max(-INT64, min(INT64 - 1, number))


def _decimal(text: str) -> int:
    """An optionally signed run of ASCII digits of any length; past int64 it only needs to saturate
    (and int() refuses a run of over 4300 digits)."""
    sign = -1 if text[0] == "-" else 1
    digits = text.lstrip("+-").lstrip("0") or "0"
    return sign * (int(digits) if len(digits) <= 19 else INT64)


def _float_to_int(number: float) -> int:
    return 0 if math.isinf(number) or math.isnan(number) else int(number)


def truthy(value: object) -> bool:
    """PHP truthiness: false iff "", "0", 0, 0.0, false, null or an empty array."""
    if isinstance(value, str):
        return value not in ("", "0")
    return bool(value)
