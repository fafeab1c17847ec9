"""Where a setting came from: the line of a key in a TOML file (tomllib gives no positions),
the environment variable that set it, and which layer (file, environment, flag) gave each
dotted key. Kept apart from config.py, which only declares the settings."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

Path_ = tuple[str | int, ...]  # a location as pydantic gives it: ("peers", 1, "port")

_ARRAY_HEADER = re.compile(r"^\s*\[\[\s*([^\]]+?)\s*\]\]")
_TABLE_HEADER = re.compile(r"^\s*\[\s*([^\]\[]+?)\s*\]")
_KEY_LINE = re.compile(r"""^\s*((?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*')(?:\s*\.\s*(?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*'))*)\s*=""")
_KEY_PART = re.compile(r"""[A-Za-z0-9_-]+|"[^"]*"|'[^']*'""")


def _parts(dotted: str) -> tuple[str, ...]:
    return tuple(p.strip("\"'") for p in _KEY_PART.findall(dotted))


def key_lines(text: str) -> dict[Path_, int]:
    """Every table header and key of a TOML document → its 1-based line. Array-of-tables
    entries are numbered as pydantic numbers them: [[peers]] twice gives ("peers", 0) and
    ("peers", 1). A small scanner, enough for configuration files: keys inside inline tables
    and multi-line values are not found (the caller falls back to the enclosing key)."""
    lines: dict[Path_, int] = {}
    arrays: dict[tuple[str, ...], int] = {}
    table: Path_ = ()
    in_multiline = False
    for number, line in enumerate(text.splitlines(), start=1):
        opens_or_closes = (line.count('"""') + line.count("'''")) % 2 == 1
        if in_multiline:
            in_multiline = not opens_or_closes
            continue
        in_multiline = opens_or_closes
        if found := _ARRAY_HEADER.match(line):
            name = _parts(found[1])
            arrays[name] = arrays.get(name, -1) + 1
            table = (*name, arrays[name])
            lines.setdefault(table, number)
            lines.setdefault(name, number)
        elif found := _TABLE_HEADER.match(line):
            table = _parts(found[1])
            # a sub-table of the last array entry, e.g. [peers.options] after [[peers]]
            if table[:1] and (table[0],) in arrays and len(table) > 1:
                table = (table[0], arrays[(table[0],)], *table[1:])
            lines.setdefault(table, number)
        elif found := _KEY_LINE.match(line):
            lines.setdefault((*table, *_parts(found[1])), number)
    return lines


def line_of(lines: Mapping[Path_, int], loc: Path_) -> int | None:
    """The line of `loc`, else of the nearest enclosing key or table that is in the file."""
    for end in range(len(loc), 0, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return None


def env_var_for(loc: Path_, prefix: str = "TWINPACS_", delimiter: str = "__") -> str | None:
    """The environment variable that set `loc` (or the enclosing section, for a JSON value),
    spelt as it is in the environment (the names are matched case-insensitively)."""
    present = {name.upper(): name for name in os.environ}
    keys = [str(p) for p in loc if not isinstance(p, int)]
    for end in range(len(keys), 0, -1):
        candidate = (prefix + delimiter.join(keys[:end])).upper()
        if candidate in present:
            return present[candidate]
    return None


def flatten_raw(data: Mapping[str, Any], prefix: str = "") -> tuple[dict[str, Any], set[str]]:
    """A raw layer (a parsed file, the environment, the flags) as dotted keys, and the keys
    that hold a list of tables (which a higher layer replaces as a whole)."""
    flat: dict[str, Any] = {}
    lists: set[str] = set()
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping) and _is_section(dotted):
            sub, sub_lists = flatten_raw(value, dotted + ".")
            flat.update(sub)
            lists |= sub_lists
        elif isinstance(value, list) and value and all(isinstance(v, Mapping) for v in value):
            lists.add(dotted)
            for i, item in enumerate(value):
                sub, sub_lists = flatten_raw(item, f"{dotted}[{i}].")
                flat.update(sub)
                lists |= sub_lists
        else:
            flat[dotted] = value
    return flat, lists


def _is_section(dotted: str) -> bool:
    # Mappings are sections except the few settings whose value is itself a table.
    return not dotted.endswith(LEAF_TABLES)


LEAF_TABLES = ("move_destinations",)  # settings typed dict[str, str]: one value, not a section


def provenance(layers: list[tuple[str, Mapping[str, Any]]]) -> dict[str, str]:
    """Dotted key → the name of the layer that gave it. `layers` go from the highest
    precedence to the lowest; a list of tables given by a higher layer hides the lower ones'."""
    sources: dict[str, str] = {}
    hidden: set[str] = set()
    for name, data in layers:
        flat, lists = flatten_raw(data)
        for key in flat:
            if key not in sources and not any(_under(key, h) for h in hidden):
                sources[key] = name
        hidden |= lists | {k for k, v in flat.items() if isinstance(v, list)}
    return sources


def _under(key: str, root: str) -> bool:
    return key == root or key.startswith(root + ".") or key.startswith(root + "[")
