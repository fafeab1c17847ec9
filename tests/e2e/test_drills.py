"""The drills run end to end, as staff would run them (without waiting for Enter)."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.timeout(240)
@pytest.mark.parametrize("scenario, ending", [
    ("failover", "Drill complete: A is active again, B is standby, nothing was lost."),
    ("downtime", "Drill complete: B caught up; the notice is cleared."),
])
def test_drill(scenario: str, ending: str) -> None:
    result = subprocess.run([sys.executable, "-m", "twinpacs", "drill", scenario, "--auto"],
                            capture_output=True, text=True, timeout=220, env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert ending in result.stdout
    if scenario == "failover":
        assert "ready: False" in result.stdout and "EMERG0000-00000" in result.stdout
    else:
        assert "Connection refused" in result.stdout


def test_unknown_drill_is_a_usage_error() -> None:
    result = subprocess.run([sys.executable, "-m", "twinpacs", "drill", "flood"], capture_output=True, text=True)
    assert result.returncode == 2 and "unknown drill" in result.stderr
