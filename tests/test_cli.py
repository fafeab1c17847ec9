"""The operator commands, run as an operator runs them."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pydicom

from twinpacs.synthetic import StudySpec, encode, write_study


def twinpacs(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "twinpacs", *args], capture_output=True, text=True, timeout=120)


def test_help_lists_the_commands() -> None:
    result = twinpacs("--help")
    assert result.returncode == 0
    for command in ("serve", "import", "find", "conflicts", "figures", "demo"):
        assert command in result.stdout


def test_import_reports_stored_duplicate_and_rejected(tmp_path: Path) -> None:
    files = write_study(StudySpec(series=1, instances_per_series=3, rows=8, columns=8), tmp_path / "in")
    (tmp_path / "in" / "notes.txt").write_text("not an image")
    (tmp_path / "in" / "cut.dcm").write_bytes(files[0].read_bytes()[:-40])
    data = ["--data-dir", str(tmp_path / "site")]
    first = twinpacs("import", str(tmp_path / "in"), *data, "--json")
    summary = json.loads(first.stdout)
    assert first.returncode == 1  # something was rejected
    assert (summary["stored"], summary["duplicate"]) == (3, 0)
    reasons = {Path(r["path"]).name: r["reason"] for r in summary["rejected"]}
    assert set(reasons) == {"notes.txt", "cut.dcm"} and "truncated" in reasons["cut.dcm"]
    again = twinpacs("import", *map(str, files), *data)
    assert again.returncode == 0
    assert "stored 0, duplicate 3" in again.stdout


def test_find_and_conflicts_from_the_shell(tmp_path: Path) -> None:
    files = write_study(StudySpec(patient_id="CLI1", series=1, instances_per_series=2, rows=8, columns=8), tmp_path / "in")
    data = ["--data-dir", str(tmp_path / "site")]
    assert twinpacs("import", str(tmp_path / "in"), *data).returncode == 0
    rows = json.loads(twinpacs("find", "PatientID=CLI*", "--level", "study", *data, "--json").stdout)
    assert len(rows) == 1 and rows[0]["NumberOfStudyRelatedInstances"] == "2"
    table = twinpacs("find", "PatientID=CLI1", "--level", "IMAGE", *data)
    assert "2 image result(s)" in table.stdout
    changed = pydicom.dcmread(io.BytesIO(files[0].read_bytes()))
    changed.PatientName = "Other^Name"
    (tmp_path / "changed.dcm").write_bytes(encode(changed))
    assert "conflicting version kept 1" in twinpacs("import", str(tmp_path / "changed.dcm"), *data).stdout
    (conflict,) = json.loads(twinpacs("conflicts", "list", *data, "--json").stdout)
    resolved = twinpacs("conflicts", "resolve", str(conflict["id"]), "--keep", "current", *data)
    assert resolved.returncode == 0
    assert json.loads(twinpacs("conflicts", "list", *data, "--json").stdout) == []


def test_bad_configuration_names_the_setting(tmp_path: Path) -> None:
    config = tmp_path / "site.toml"
    config.write_text('[site]\nae_title = "A"\ndata_dir = "x"\n[dicom]\nport = "eleven"\ncolour = 1\n')
    result = twinpacs("figures", "--config", str(config))
    assert result.returncode == 2
    assert "dicom.port" in result.stderr and "dicom.colour: unknown setting" in result.stderr
    assert "Traceback" not in result.stderr
    missing = twinpacs("find", "--config", str(tmp_path / "absent.toml"))
    assert missing.returncode == 2 and "does not exist" in missing.stderr


def test_bad_query_is_a_clear_error(tmp_path: Path) -> None:
    result = twinpacs("find", "StudyDate=yesterday", "--data-dir", str(tmp_path / "site"))
    assert result.returncode == 1 and "StudyDate" in result.stderr and "Traceback" not in result.stderr
    level = twinpacs("find", "--level", "FRAME", "--data-dir", str(tmp_path / "site"))
    assert level.returncode == 1 and "QueryRetrieveLevel" in level.stderr
