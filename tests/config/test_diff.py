"""The one comparison behind the start log, `config diff` and the admin API."""

from __future__ import annotations

from twinpacs.fingerprint import diff, fingerprint


def e(value: object, explicit: bool = True) -> dict[str, object]:
    return {"value": value, "explicit": explicit}


OLD = {"dicom.port": e(11112, False), "http.port": e(8080), "site.role": e("active"), "peers": e([]),
       "storage.conflict_policy": e("keep-first")}
NEW = {"dicom.port": e(104), "http.port": e(8080, False), "site.role": e("active"),
       "peers[0].name": e("B"), "storage.conflict_policy": e("keep-first")}


def test_added_removed_changed_and_default_vs_explicit() -> None:
    changes = diff(OLD, NEW)
    by_key = {c.key: c for c in changes.settings}
    assert set(by_key) == {"dicom.port", "http.port", "peers", "peers[0].name"}
    assert by_key["dicom.port"].kind == "changed"
    assert by_key["dicom.port"].describe() == "dicom.port 11112 -> 104 (default -> explicit)"
    assert by_key["http.port"].kind == "now default"
    assert by_key["peers"].kind == "removed" and by_key["peers[0].name"].kind == "added"
    assert by_key["peers[0].name"].describe() == 'peers[0].name added: "B" (explicit)'
    assert changes.counts() == {"added": 1, "removed": 1, "changed": 1, "now explicit": 0, "now default": 1,
                                "environment": 0}
    assert diff(NEW, OLD).counts()["now explicit"] == 1


def test_an_explicit_change_reads_as_in_the_log() -> None:
    (change,) = diff({"dicom.port": e(11112)}, {"dicom.port": e(104)}).settings
    assert change.describe() == "dicom.port 11112 -> 104 (explicit)"


def test_environment_is_compared_only_when_both_sides_have_one() -> None:
    env_a = {"twinpacs": "0.1.0", "database.engine": "sqlite", "psycopg": None}
    env_b = {"twinpacs": "0.2.0", "database.engine": "postgresql", "psycopg": "3.3.9", "os": "Linux"}
    changes = diff(OLD, OLD, env_a, env_b)
    assert not changes.settings
    assert [(c.key, c.kind) for c in changes.environment] == [
        ("database.engine", "changed"), ("os", "added"), ("psycopg", "changed"), ("twinpacs", "changed")]
    assert diff(OLD, OLD, env_a, None).empty and diff(OLD, OLD).empty


def test_fingerprint_covers_values_explicitness_and_environment() -> None:
    base = fingerprint(OLD, {"twinpacs": "0.1.0"})
    assert base == fingerprint(dict(reversed(list(OLD.items()))), {"twinpacs": "0.1.0"})
    assert base != fingerprint({**OLD, "http.port": e(8080, False)}, {"twinpacs": "0.1.0"})
    assert base != fingerprint(OLD, {"twinpacs": "0.2.0"})
