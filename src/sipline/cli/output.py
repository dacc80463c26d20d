"""How operator commands print what they list: a table under a header row, or (`--json`) JSON.

Both carry the same keys: the table's column names are the JSON objects' keys, so a script
that reads `--json` and a person who reads the table see one vocabulary. In the table an
absent value (None, "") is `-`, so that every row has a cell in every column.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

COLUMN_GAP = "  "
ABSENT = "-"


class CommandFailed(Exception):
    """An operator command that cannot be carried out (what it names is not there): its message is
    printed as one line and the command exits 1."""


@dataclass(frozen=True)
class Table:
    columns: tuple[str, ...]
    rows: Sequence[Mapping[str, object]]

    def render(self, as_json: bool) -> str:
        if as_json:
            return to_json([{column: row[column] for column in self.columns} for row in self.rows])
        return aligned([list(self.columns), *([cell(row[column]) for column in self.columns] for row in self.rows)])


def aligned(lines: list[list[str]]) -> str:
    """Rows of cells in columns as wide as their widest cell, left-aligned."""
    widths = [max(len(line[index]) for line in lines) for index in range(len(lines[0]))]
    return "\n".join(
        COLUMN_GAP.join(text.ljust(width) for text, width in zip(line, widths, strict=True)).rstrip() for line in lines
    )


def cell(value: object) -> str:
    if value is None or value == "":
        return ABSENT
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def to_json(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, indent=2)
