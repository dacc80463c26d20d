"""The layout rules of docs/architecture.md ("House rules"), checked on the source tree itself."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "src" / "sipline"
BEHAVIOUR = ROOT / "docs" / "behaviour.md"

# room -> the rooms it may import (docs/architecture.md, "Rooms"); `files` is a loose module
ALLOWED = {
    "sip": set(),
    "store": {"files"},
    "accounts": {"store"},
    "registrar": {"sip", "store"},
    "registration": {"sip", "store"},
    "telephony": {"accounts", "events", "sip", "store"},  # services.py holds the events services too
    "events": {"accounts", "sip", "store"},
    "rest": {"accounts", "events", "telephony", "sip", "store"},
    "web": {"accounts", "events", "telephony", "rest", "sip", "store"},
    "server": {
        "accounts", "events", "telephony", "registration", "registrar", "rest", "web", "sip", "store", "files"
    },
    "cli": {"accounts", "events", "telephony", "registration", "registrar", "rest", "server", "sip", "store", "files"},
    "files": set(),
}
LOOSE = {"__init__", "__main__", "files"}
MAX_LINES = 500


def sources() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def room_of(path: Path) -> str:
    parts = path.relative_to(PACKAGE).parts
    return parts[0] if len(parts) > 1 else parts[0].removesuffix(".py")


def imported_rooms(path: Path) -> set[str]:
    rooms = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        rooms |= {name.split(".")[1] for name in names if name.startswith("sipline.")}
    return rooms


def imported_modules(path: Path) -> set[str]:
    """The sipline modules `path` imports, anywhere in it (a function's import ties files as much)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("sipline."):
            found |= {f"{node.module}.{alias.name}" for alias in node.names} | {node.module}
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("sipline.")}
    return found


def module_of(path: Path) -> str:
    return ".".join(("sipline", *path.relative_to(PACKAGE).with_suffix("").parts)).removesuffix(".__init__")


def test_no_files_import_each_other_in_a_circle():
    modules = {module_of(path): path for path in sources()}
    arrows = {name: imported_modules(path) & modules.keys() - {name} for name, path in modules.items()}
    done: set[str] = set()

    def circle_from(name: str, trail: list[str]) -> list[str] | None:
        if name in trail:
            return trail[trail.index(name) :] + [name]
        if name in done:
            return None
        for target in sorted(arrows[name]):
            if (found := circle_from(target, trail + [name])) is not None:
                return found
        done.add(name)
        return None

    circles = [found for name in sorted(modules) if (found := circle_from(name, [])) is not None]
    assert circles[:1] == []


def test_every_room_imports_only_the_rooms_its_arrows_lead_to():
    wrong = {}
    for path in sources():
        room = room_of(path)
        if room in ("__init__", "__main__"):
            continue
        outside = imported_rooms(path) - {room} - ALLOWED[room]
        if outside:
            wrong[str(path.relative_to(PACKAGE))] = sorted(outside)
    assert wrong == {}


def test_at_most_four_loose_modules_and_every_room_is_known():
    top = {path.name.removesuffix(".py") for path in PACKAGE.iterdir() if path.suffix == ".py"}
    rooms = {path.name for path in PACKAGE.iterdir() if path.is_dir() and (path / "__init__.py").exists()}
    assert top == LOOSE and len(top) <= 4
    assert rooms == set(ALLOWED) - LOOSE


def test_no_source_file_is_over_500_lines():
    long = {
        str(path.relative_to(PACKAGE)): n for path in sources() if (n := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}


def test_every_behaviour_anchor_the_code_cites_exists():
    anchors = set(re.findall(r'<a id="([^"]+)"></a>', BEHAVIOUR.read_text()))
    cited = {}
    for path in sources():
        for anchor in re.findall(r"docs/behaviour\.md#([A-Za-z0-9_-]+)", path.read_text()):
            cited.setdefault(anchor, str(path.relative_to(PACKAGE)))
    assert anchors and {anchor: path for anchor, path in cited.items() if anchor not in anchors} == {}
