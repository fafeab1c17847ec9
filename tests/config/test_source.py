"""The small TOML locator and the provenance of each key (which layer gave it)."""

from __future__ import annotations

from twinpacs.config_source import key_lines, line_of, provenance

DOC = '''# a comment: port = 1
peers = []

[site]
name = "A"
"ae_title" = "X"

[dicom]
port = 104
move_destinations.WS = "127.0.0.1:11115"
note = """
port = 5
"""

[[peers]]
name = "B"

[[ peers ]]
name = "C"
port = 4242

[replication]
batch_size = 3
'''


def test_keys_and_tables_have_their_lines() -> None:
    lines = key_lines(DOC)
    assert lines[("peers",)] == 2
    assert lines[("site",)] == 4 and lines[("site", "name")] == 5 and lines[("site", "ae_title")] == 6
    assert lines[("dicom", "port")] == 9  # not the one inside the multi-line string
    assert lines[("dicom", "move_destinations", "WS")] == 10
    assert lines[("peers", 0)] == 15 and lines[("peers", 0, "name")] == 16
    assert lines[("peers", 1)] == 18 and lines[("peers", 1, "port")] == 20
    assert lines[("replication", "batch_size")] == 23


def test_an_absent_key_falls_back_to_its_table() -> None:
    lines = key_lines(DOC)
    assert line_of(lines, ("peers", 1, "kind")) == 18
    assert line_of(lines, ("dicom", "move_destinations", "OTHER")) == 8
    assert line_of(lines, ("http", "port")) is None


def test_higher_layers_win_and_a_list_of_tables_is_replaced_whole() -> None:
    sources = provenance([
        ("flag", {"dicom": {"port": 1}, "peers": []}),
        ("env", {"dicom": {"port": "2", "bind": "0.0.0.0"}}),
        ("file", {"dicom": {"port": 3, "max_associations": 4}, "peers": [{"name": "B", "kind": "dimse"}]}),
    ])
    assert sources == {"dicom.port": "flag", "peers": "flag", "dicom.bind": "env", "dicom.max_associations": "file"}
