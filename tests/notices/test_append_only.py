"""The operator log is append-only: no method, no SQL and no route can change or remove an entry."""

from __future__ import annotations

import ast
from pathlib import Path

import httpx
import pytest
from starlette.routing import Route

from tests.web.conftest import assert_error
from twinpacs.announcements import Announcements
from twinpacs.app import Site
from twinpacs.core.operator_log import OperatorLog, OperatorLogStore
from twinpacs.index.operator_log import SqlOperatorLogStore
from twinpacs.web import create_app

SRC = Path(__file__).parents[2] / "src" / "twinpacs"
ALLOWED = {"record", "entries", "append"}


@pytest.mark.parametrize("cls", [OperatorLog, OperatorLogStore, SqlOperatorLogStore])
def test_no_method_but_append_and_read(cls: type) -> None:
    public = {name for name in vars(cls) if not name.startswith("_")}
    assert public <= ALLOWED, f"{cls.__name__} offers {public - ALLOWED}"


def test_the_sql_never_updates_or_deletes() -> None:
    tree = ast.parse((SRC / "index" / "operator_log.py").read_text())
    names = {alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) for alias in node.names}
    assert {"update", "delete"} & names == set()
    attributes = {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)}
    assert {"update", "delete", "execute_update"} & attributes == set()
    for path in SRC.rglob("*.py"):  # no other module touches the table with UPDATE or DELETE
        text = path.read_text()
        if path.name != "schema.py" and "operator_log" in text:
            assert "update(operator_log" not in text and "delete(operator_log" not in text, path


def test_no_route_writes_it(site: Site) -> None:
    for route in create_app(site).routes:
        if isinstance(route, Route) and "operator-log" in route.path:
            assert route.methods is not None and route.methods <= {"GET", "HEAD"}, route.path


@pytest.mark.anyio
@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
async def test_writes_are_refused(client: httpx.AsyncClient, site: Site, method: str) -> None:
    Announcements.from_site(site).operator_log.record("dave", "failover.force", "drill")
    assert_error(await client.request(method, "/api/operator-log", json={}), 405)
    entries = (await client.get("/api/operator-log")).json()["entries"]
    assert [(e["actor"], e["reason"]) for e in entries] == [("dave", "drill")]


def test_entries_accumulate_newest_first(site: Site) -> None:
    log = Announcements.from_site(site).operator_log
    first = log.record("erin", "a", "one", {"n": 1})
    second = log.record("erin", "b", "two")
    assert [e.id for e in log.entries()] == [second.id, first.id]
    assert log.entries()[1].details == {"n": 1}
