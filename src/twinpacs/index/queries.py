"""Read side: Query -> SQL. Readers use their own connections and never take the write lock."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, bindparam, exists, func, select
from sqlalchemy.engine import Connection

from ..core.model import LEVEL_KEYS, LEVEL_ORDER, UNIQUE_KEY, Level, StoredInstance, keys_up_to
from ..core.query import Match, MatchKind, Query
from .prepared import Prepared
from .schema import instances, patients, series, studies

_TABLE = {Level.PATIENT: patients, Level.STUDY: studies, Level.SERIES: series, Level.IMAGE: instances}

# Computed return keys that are plain counter columns of the level's own table.
_COUNTER_COLUMNS = {
    "NumberOfPatientRelatedStudies": "num_studies",
    "NumberOfPatientRelatedSeries": "num_series",
    "NumberOfPatientRelatedInstances": "num_instances",
    "NumberOfStudyRelatedSeries": "num_series",
    "NumberOfStudyRelatedInstances": "num_instances",
    "NumberOfSeriesRelatedInstances": "num_instances",
}


def _joined(level: Level) -> Any:
    """FROM clause holding every table from PATIENT down to `level`."""
    joined: Any = patients
    if level in (Level.STUDY, Level.SERIES, Level.IMAGE):
        joined = joined.join(studies, studies.c.patient_pk == patients.c.id)
    if level in (Level.SERIES, Level.IMAGE):
        joined = joined.join(series, series.c.study_pk == studies.c.id)
    if level is Level.IMAGE:
        joined = joined.join(instances, instances.c.series_pk == series.c.id)
    return joined


def _column(keyword: str) -> Any:
    for level in LEVEL_ORDER:
        if keyword in LEVEL_KEYS[level]:
            return _TABLE[level].c[keyword]
    raise KeyError(keyword)


def _like_pattern(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%").replace("?", "_")


def _condition(n: int, match: Match) -> ColumnElement[bool]:
    """The SQL condition of the query's n-th active match, its values as bound parameters
    (named by `_values`): statements of the same shape are then built and compiled once."""
    if match.keyword == "ModalitiesInStudy":
        return exists().where(series.c.study_pk == studies.c.id, series.c.Modality.in_(_list(n, match)))
    column = _column(match.keyword)
    if match.kind is MatchKind.RANGE:
        parts = [column != ""]
        if match.lower:
            parts.append(column >= bindparam(f"m{n}_lower"))
        if match.upper:
            parts.append(column <= bindparam(f"m{n}_upper"))
        return and_(*parts)
    if match.kind is MatchKind.UID_LIST:
        return column.in_(_list(n, match))
    if match.case_insensitive:
        column = func.lower(column)
    if match.kind is MatchKind.WILDCARD:
        return column.like(bindparam(f"m{n}"), escape="\\")
    return column == bindparam(f"m{n}")


def _list(n: int, match: Match) -> list[Any]:
    return [bindparam(f"m{n}_{i}") for i in range(len(match.values))]


def _values(n: int, match: Match) -> dict[str, str]:
    if match.kind is MatchKind.RANGE:
        return {**({f"m{n}_lower": match.lower} if match.lower else {}),
                **({f"m{n}_upper": match.upper} if match.upper else {})}
    if match.kind is MatchKind.UID_LIST or match.keyword == "ModalitiesInStudy":
        return {f"m{n}_{i}": value for i, value in enumerate(match.values)}
    value = match.values[0].lower() if match.case_insensitive else match.values[0]
    return {f"m{n}": _like_pattern(value) if match.kind is MatchKind.WILDCARD else value}


@dataclass(frozen=True)
class _Search:
    """The statement of one query shape, compiled once per dialect (index/prepared.py)."""

    select: Select[Any]
    prepared: Prepared
    keys: tuple[str, ...]  # of the result columns, in order

    @classmethod
    def of(cls, statement: Select[Any]) -> _Search:
        return cls(statement, Prepared(statement), tuple(c.key for c in statement.selected_columns))


# Statements by query shape: building and cache-keying a fresh SQLAlchemy statement per query
# cost more than running it (~0.1 ms of a 0.4 ms PatientID search), and so did Connection.
# execute's machinery afterwards. Bounded, as QIDO-RS's limits and offsets make new shapes.
_PREPARED: dict[tuple[Any, ...], _Search] = {}
_PREPARED_MAX = 512


def _prepared(query: Query) -> tuple[_Search, dict[str, str]]:
    """The statement for `query`'s shape (built on first use) and the values to bind."""
    active = query.active()
    shape = (query.level, query.return_keys, query.limit, query.offset,
             tuple((m.keyword, m.kind, m.case_insensitive, bool(m.lower), bool(m.upper), len(m.values))
                   for m in active))
    statement = _PREPARED.get(shape)
    if statement is None:
        if len(_PREPARED) >= _PREPARED_MAX:
            _PREPARED.clear()
        statement = _PREPARED[shape] = _Search.of(_build(query, active))
    return statement, {k: v for n, m in enumerate(active) for k, v in _values(n, m).items()}


def select_matches(query: Query) -> Select[Any]:
    """The statement `run_query` executes for `query`, with its values bound."""
    search, values = _prepared(query)
    return search.select.params(values)


def _build(query: Query, active: list[Match]) -> Select[Any]:
    table = _TABLE[query.level]
    wanted = [k for k in keys_up_to(query.level) if k in query.return_keys or k == UNIQUE_KEY[query.level]]
    columns = [table.c.id.label("_pk")] + [_column(k) for k in wanted]
    columns += [table.c[col].label(key) for key, col in _COUNTER_COLUMNS.items()
                if key in query.return_keys and col in table.c and _owns(query.level, key)]
    statement = select(*columns).select_from(_joined(query.level))
    statement = statement.where(*[_condition(n, m) for n, m in enumerate(active)]).order_by(table.c.id)
    if query.limit is not None:
        statement = statement.limit(query.limit)
    return statement.offset(query.offset) if query.offset else statement


def _owns(level: Level, key: str) -> bool:
    return key.startswith({Level.PATIENT: "NumberOfPatient", Level.STUDY: "NumberOfStudy",
                           Level.SERIES: "NumberOfSeries", Level.IMAGE: "-"}[level])


def run_query(conn: Connection, query: Query) -> list[dict[str, str]]:
    """Matching rows as keyword -> DICOM text, with the computed keys that were asked for."""
    search, values = _prepared(query)
    rows = [dict(zip(search.keys, r)) for r in search.prepared.rows(conn, values)]
    if query.level is Level.STUDY and rows:
        pks = [r["_pk"] for r in rows]
        if "ModalitiesInStudy" in query.return_keys:
            _attach(rows, "ModalitiesInStudy", _per_study(conn, pks, series.c.Modality))
        if "SOPClassesInStudy" in query.return_keys:
            _attach(rows, "SOPClassesInStudy", _per_study(conn, pks, instances.c.SOPClassUID))
    for row in rows:
        row.pop("_pk")
        for key, value in row.items():
            row[key] = "" if value is None else str(value)
    return rows


_PER_STUDY: dict[tuple[Any, int], Prepared] = {}  # by column and number of studies


def _per_study(conn: Connection, study_pks: list[int], column: Any) -> dict[int, list[str]]:
    prepared = _PER_STUDY.get((column, len(study_pks)))
    if prepared is None:
        if len(_PER_STUDY) >= _PREPARED_MAX:
            _PER_STUDY.clear()
        statement = select(series.c.study_pk, column).distinct().where(
            series.c.study_pk.in_([bindparam(f"pk{i}") for i in range(len(study_pks))]))
        if column.table is instances:
            statement = statement.select_from(series.join(instances, instances.c.series_pk == series.c.id))
        prepared = _PER_STUDY[(column, len(study_pks))] = Prepared(statement.order_by(column))
    found: dict[int, list[str]] = defaultdict(list)
    for pk, value in prepared.rows(conn, {f"pk{i}": pk for i, pk in enumerate(study_pks)}):
        if value:
            found[pk].append(value)
    return found


def _attach(rows: list[dict[str, Any]], key: str, values: dict[int, list[str]]) -> None:
    for row in rows:
        row[key] = "\\".join(values.get(row["_pk"], []))


def stored_instances(conn: Connection, uids: dict[str, str]) -> list[StoredInstance]:
    """The current version of every instance under the given Study/Series/SOP Instance UIDs
    (each value may be a backslash-separated list), in study, series, instance order."""
    statement = select(
        instances.c.SOPInstanceUID, instances.c.SOPClassUID, studies.c.StudyInstanceUID,
        series.c.SeriesInstanceUID, instances.c.transfer_syntax, instances.c.content_hash,
        instances.c.size,
    ).select_from(_joined(Level.IMAGE))
    for keyword, value in uids.items():
        values = [v for v in value.split("\\") if v]
        if values:
            statement = statement.where(_column(keyword).in_(values))
    # InstanceNumber is IS (text): shorter first orders "9" before "10".
    statement = statement.order_by(
        studies.c.id, series.c.id, func.length(instances.c.InstanceNumber),
        instances.c.InstanceNumber, instances.c.id,
    )
    return [StoredInstance(*row) for row in conn.execute(statement)]


def counts(conn: Connection) -> dict[str, int]:
    return {
        "patients": conn.execute(select(func.count()).select_from(patients)).scalar_one(),
        "studies": conn.execute(select(func.count()).select_from(studies)).scalar_one(),
        "series": conn.execute(select(func.count()).select_from(series)).scalar_one(),
        "instances": conn.execute(select(func.count()).select_from(instances)).scalar_one(),
    }
