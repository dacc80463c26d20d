"""`batch`: up to 50 sub-calls in one request, later ones reading earlier outcomes (docs/behaviour.md#rest-batch).

How it works: commands run one after another in `cmd` order. Each string `method?query` is decoded
with PHP's parse_str, `$result[id][…]` references in its values are filled from the outcomes so far,
and the caller's `call` runs it (auth, scope and limits are the caller's business). Every outcome is
recorded under its command id in five sections, which are both the answer and the source of later
references. Nothing here does I/O except awaiting `call`; between two commands the event loop
serves others, since each command's decoding alone can take milliseconds.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from sipline.rest import php_variables
from sipline.telephony import php_values

# docs/behaviour.md#rest-batch step 1; the real server's CRestUtil::BATCH_MAX_LENGTH.
MAX_COMMANDS = 50
# docs/behaviour.md#rest-batch step 4: batch nesting, and the file transfer methods of the real server.
NOT_ALLOWED = frozenset({"batch", "download", "upload"})

# docs/behaviour.md#rest-batch grammar: `$` + keyword + a run of non-whitespace (PCRE's ASCII `\s`, not Python's Unicode one).
_REFERENCE = re.compile(r"\$(result|next|total|time|error)([^ \t\n\r\v\f]*)", re.IGNORECASE)
# Every non-empty `[seg]` in the run is a path step; an empty `[]` is not one (as in the real server).
_STEP = re.compile(r"\[([^\]]+)\]")

Key = int | str


@dataclass(frozen=True)
class SubSuccess:
    result: object  # the method's result as it would go in "result"
    time: dict[str, object]  # the sub-call's own time block
    total: int | None = None  # list methods only
    next: int | None = None


@dataclass(frozen=True)
class SubFailure:
    error: str  # e.g. "ERROR_METHOD_NOT_FOUND"
    description: str


SubCall = Callable[[str, dict[str, object]], Awaitable[SubSuccess | SubFailure]]

LENGTH_EXCEEDED = SubFailure("ERROR_BATCH_LENGTH_EXCEEDED", "Max batch length exceeded")
METHOD_NOT_ALLOWED = SubFailure("ERROR_BATCH_METHOD_NOT_ALLOWED", "Method is not allowed for batch usage")

# Section names as `$` references spell them, in the order of the response keys.
_SECTIONS = {
    "result": "result",
    "error": "result_error",
    "total": "result_total",
    "next": "result_next",
    "time": "result_time",
}

Sections = dict[str, dict[Key, object]]


async def run_batch(cmd: object, halt: object, call: SubCall) -> dict[str, object]:
    """The `result` of a batch call: the five sections of docs/behaviour.md#rest-batch.

    `cmd` is a map (command id → string) or a list (ids 0..n-1); anything else means no commands.
    `halt` is read with PHP truthiness, so the form value "false" is true.
    """
    sections: Sections = {name: {} for name in _SECTIONS}
    stop_on_failure = php_values.truthy(halt)
    for position, (command_id, command) in enumerate(_commands(cmd)):
        if position:
            await asyncio.sleep(0)
        if position >= MAX_COMMANDS:
            outcome: SubSuccess | SubFailure = (
                LENGTH_EXCEEDED  # docs/behaviour.md#rest-batch step 1: reported, the batch goes on
            )
        elif not isinstance(command, str):
            continue  # docs/behaviour.md#rest-batch step 1: skipped, yet counted toward the 50
        else:
            outcome = await _run_command(command, sections, call)
        _record(sections, command_id, outcome)
        if stop_on_failure and isinstance(outcome, SubFailure):
            break  # docs/behaviour.md#rest-batch step 6: later commands are absent from every section
    return {response_key: _php_array(sections[name]) for name, response_key in _SECTIONS.items()}


def _commands(cmd: object) -> list[tuple[Key, object]]:
    if isinstance(cmd, list):
        return list(enumerate(cmd))
    if isinstance(cmd, dict):
        return [
            (key if isinstance(key, int) else php_variables.symtable_key(str(key)), value) for key, value in cmd.items()
        ]
    return []


async def _run_command(command: str, sections: Sections, call: SubCall) -> SubSuccess | SubFailure:
    method, _, query = command.partition("?")  # docs/behaviour.md#rest-batch step 2: split at the first `?`
    method = method.lower()  # docs/behaviour.md#rest-batch step 4
    if method in NOT_ALLOWED:
        return METHOD_NOT_ALLOWED
    try:
        params = php_variables.parse_query(query.encode("utf-8", "surrogatepass"))
    except php_variables.NotUtf8 as exc:
        return SubFailure("ERROR_ARGUMENT", f"Invalid parameters: {exc}")
    return await call(method, {name: _substitute(value, sections) for name, value in params.items()})


def _record(sections: Sections, command_id: Key, outcome: SubSuccess | SubFailure) -> None:
    if isinstance(outcome, SubFailure):
        sections["error"][command_id] = {"error": outcome.error, "error_description": outcome.description}
        return
    sections["result"][command_id] = outcome.result
    sections["time"][command_id] = outcome.time
    if outcome.total is not None:
        sections["total"][command_id] = outcome.total
    if outcome.next is not None:
        sections["next"][command_id] = outcome.next


def _substitute(value: object, sections: Sections) -> object:
    """Replace `$` references in every string inside `value`; keys stay as written (docs/behaviour.md#rest-batch, [R])."""
    if isinstance(value, dict):
        return {key: _substitute(item, sections) for key, item in value.items()}
    if isinstance(value, list):
        return [_substitute(item, sections) for item in value]
    if not isinstance(value, str):
        return value
    whole = _REFERENCE.fullmatch(value)
    if whole:
        return _resolve(whole, sections)  # docs/behaviour.md#rest-batch: the entire value becomes the node, of any type
    return _REFERENCE.sub(lambda match: _php_string(_resolve(match, sections)), value)


def _resolve(reference: re.Match[str], sections: Sections) -> object:
    """The node a reference names; the reference text itself when it has no `[seg]` step."""
    path = reference.group(2)
    # Only up to the last "]": past it, every "[" would be tried as a start and the rest walked again.
    steps = _STEP.findall(path, 0, path.rfind("]") + 1)
    if not steps:
        return reference.group(0)  # the real server leaves a bare `$result` alone
    node: object = _php_array(sections[reference.group(1).lower()])
    for step in steps:
        child = _child(node, step)
        if child is None:
            break  # docs/behaviour.md#rest-batch: stop at the first missing step and keep the node reached (PHP isset)
        node = child
    return node


def _child(node: object, step: str) -> object:
    """`$node[step]` as PHP's isset sees it: None when absent or null."""
    if isinstance(node, list):
        index = php_variables.symtable_key(step)
        return node[index] if isinstance(index, int) and 0 <= index < len(node) else None
    if isinstance(node, dict):
        found = node.get(step)
        return found if found is not None else node.get(php_variables.symtable_key(step))
    return None


def _php_array(items: dict[Key, object]) -> list[object] | dict[str, object]:
    """PHP's JSON rendering of an array: a list when keys are 0..n-1 in order (or none), else a map."""
    if all(key == position for position, key in enumerate(items)):
        return list(items.values())
    return {str(key): value for key, value in items.items()}


def _php_string(node: object) -> str:
    """PHP's string form of a node spliced into text: arrays → "Array", null → "", true → "1"."""
    if php_values.is_scalar(node):
        return php_values.strval(node)
    return "Array" if isinstance(node, (list, dict)) else ""  # the rest is null: results are JSON values
