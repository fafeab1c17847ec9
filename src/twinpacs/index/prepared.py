"""The store path's statements, compiled once per database dialect and run on the DBAPI cursor.

Connection.execute costs ~25 µs a statement beyond the driver's own work (cache lookup,
parameter processing, result and event machinery); a store runs about ten statements, and
that was a third of its index write (issue 4). A Prepared statement is still a portable Core
statement: SQLAlchemy renders it for each dialect and processes its parameters, once."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from weakref import WeakKeyDictionary

from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler


@dataclass(frozen=True)
class _Compiled:
    compiled: SQLCompiler
    processors: dict[str, Callable[[Any], Any]]  # bind name -> the dialect's conversion (SQLite: datetimes)

    def arguments(self, values: Mapping[str, Any]) -> tuple[Any, ...] | dict[str, Any]:
        """`values` (and the statement's literals) as the DBAPI takes them, as Connection.execute does."""
        params = self.compiled.construct_params(values, escape_names=False)
        for name, process in self.processors.items():
            params[name] = process(params[name])
        if self.compiled.positional:
            return tuple(params[name] for name in self.compiled.positiontup or ())
        escaped = self.compiled.escaped_bind_names
        return {escaped.get(name, name): value for name, value in params.items()}


class Prepared:
    def __init__(self, statement: ClauseElement) -> None:
        self.statement = statement
        self._compiled: WeakKeyDictionary[Dialect, _Compiled] = WeakKeyDictionary()

    def rows(self, conn: Connection, values: Mapping[str, Any]) -> list[Any]:
        """Run the statement in `conn`'s transaction; its rows (RETURNING too), all fetched. A
        DBAPI error is raised as SQLAlchemy raises it, so Database.write retries the same ones."""
        dialect = conn.dialect
        compiled = self._compiled.get(dialect) or self._compile(dialect)
        arguments = compiled.arguments(values)
        sql = compiled.compiled.string
        cursor = conn.connection.cursor()
        try:
            cursor.execute(sql, arguments)
            return cursor.fetchall() if cursor.description else []
        except dialect.loaded_dbapi.Error as exc:
            raise DBAPIError.instance(sql, arguments, exc, dialect.loaded_dbapi.Error, dialect=dialect) from exc
        finally:
            cursor.close()

    def _compile(self, dialect: Dialect) -> _Compiled:
        compiled = self.statement.compile(dialect=dialect)
        assert isinstance(compiled, SQLCompiler)
        # What Connection.execute would do at run time and this class does not: refuse it.
        if (compiled.post_compile_params or compiled.literal_execute_params or compiled.insert_prefetch
                or compiled.update_prefetch):
            raise ValueError(f"not a statement to prepare (expanding or Python-side defaults): {compiled}")
        processors = {name: process for name, bind in compiled.binds.items()
                      if (process := bind.type.dialect_impl(dialect).bind_processor(dialect))}
        self._compiled[dialect] = prepared = _Compiled(compiled, processors)
        return prepared
