"""The architecture as a test: the core imports no adapter, no protocol and no SQL."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).parent.parent / "src" / "twinpacs"
FORBIDDEN_IN_CORE = ("sqlalchemy", "pynetdicom", "starlette", "uvicorn", "httpx", "twinpacs.index",
                     "twinpacs.storage", "twinpacs.dimse", "twinpacs.web", "twinpacs.app")


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:  # resolve relative imports against the package
                package = ".".join(path.relative_to(SRC.parent).with_suffix("").parts[: -node.level])
                module = f"{package}.{module}" if module else package
            names.add(module)
    return names


def test_core_imports_no_adapter() -> None:
    for path in (SRC / "core").rglob("*.py"):
        bad = [n for n in _imports(path) if n.startswith(FORBIDDEN_IN_CORE)]
        assert not bad, f"{path.name} imports {bad}"


def test_modules_stay_small() -> None:
    for path in SRC.rglob("*.py"):
        assert len(path.read_text().splitlines()) < 600, f"{path} has grown past 600 lines"
