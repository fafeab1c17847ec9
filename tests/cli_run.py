"""Run `twinpacs ARGS` inside the test process and capture what it prints."""

from __future__ import annotations

import io
from typing import Any

import pytest

from twinpacs import cli


def run_cli(capsys: pytest.CaptureFixture[str], *args: str, stdin: str = "",
            monkeypatch: pytest.MonkeyPatch | None = None) -> tuple[int, str, str]:
    """`twinpacs ARGS` in this process: (exit code, stdout, stderr); `stdin` is given to the
    command when a monkeypatch is passed to install it."""
    if monkeypatch is not None:
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    capsys.readouterr()
    code: Any = 0
    try:
        cli.main(list(args))
    except SystemExit as exc:
        code = exc.code
    captured = capsys.readouterr()
    return int(code or 0), captured.out, captured.err
