"""Method parameters: the decoded query string overlaid by the body (docs/behaviour.md#rest-params)."""

from __future__ import annotations

from dataclasses import dataclass, field

import orjson

from sipline.rest import php_variables
from sipline.rest.errors import ArgumentError
from sipline.telephony import php_values

# Names the REST layer takes for itself before a method sees the rest [S].
RESERVED = ("auth", "access_token", "start", "state")


@dataclass(frozen=True)
class Params:
    """What a method handler receives: parameters plus the paging offset `start`."""

    values: dict[str, object] = field(default_factory=dict)
    start: int = 0

    def upper(self) -> Params:
        """voximplant handlers upper-case top-level names: `config_id` ≡ `CONFIG_ID`."""
        return Params({name.upper(): value for name, value in self.values.items()}, self.start)

    def raw(self, name: str) -> object:
        return self.values.get(name)

    def present(self, name: str) -> bool:
        """PHP isset(): a JSON null counts as absent."""
        return self.values.get(name) is not None

    def optional_str(self, name: str) -> str | None:
        """The parameter as a PHP string, or None when absent.

        Raises:
            ArgumentError: the value is an array or object (docs/behaviour.md#rest-non-scalar).
        """
        value = self.values.get(name)
        if value is None:
            return None
        if not php_values.is_scalar(value):
            raise ArgumentError(f"{name} must be a scalar value", argument=name)
        return php_values.strval(value)

    def intval(self, name: str) -> int:
        """PHP intval() of a scalar parameter; 0 when absent.

        Raises:
            ArgumentError: the value is an array or object.
        """
        value = self.values.get(name)
        if value is not None and not php_values.is_scalar(value):
            raise ArgumentError(f"{name} must be a scalar value", argument=name)
        return php_values.intval(value)


def decode_json_body(body: bytes) -> dict[str, object]:
    """A JSON body must be an object (empty body = no parameters).

    Raises:
        ArgumentError: not JSON, or JSON that is not an object.
    """
    if not body.strip():
        return {}
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise ArgumentError("Invalid JSON body") from None
    if not isinstance(value, dict):
        raise ArgumentError("JSON body must be an object")
    return value


def decode_query(query: bytes) -> dict[str, object]:
    """Raises: ArgumentError for names or values that are not UTF-8."""
    try:
        return php_variables.parse_query(query)
    except php_variables.NotUtf8 as exc:
        raise ArgumentError(f"Invalid parameters: {exc}") from None


def decode_pairs(pairs: list[tuple[str, str]]) -> dict[str, object]:
    """Form fields (name, value) under PHP's naming rules, as multipart bodies give them."""
    return php_variables.register_pairs(pairs)


def build(query: dict[str, object], body: dict[str, object]) -> tuple[Params, dict[str, object]]:
    """Overlay body on query (body keys win) and split off the reserved names."""
    values = {**query, **body}
    reserved = {name: values.pop(name) for name in RESERVED if name in values}
    start = reserved.get("start")
    offset = php_values.intval(start) if start is None or php_values.is_scalar(start) else 0
    return Params(values, max(0, offset)), reserved
