"""Running the CLI as an operator does, with an environment free of TWINPACS_* settings
(so that a variable set for the whole run cannot change what a test asserts)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("TWINPACS_")}
    return {**env, **extra}


def twinpacs(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "twinpacs", *args], capture_output=True, text=True,
                          timeout=timeout, env=env if env is not None else clean_env())


def site_toml(data_dir: Path, database_url: str | None = None, extra: str = "") -> str:
    """A complete single-site configuration on free ports; `extra` is appended verbatim."""
    url = database_url or f"sqlite:///{data_dir.resolve() / 'index.sqlite3'}"
    return (f'peers = []\n\n[site]\nname = "A"\nrole = "active"\nae_title = "TWINPACS_A"\n'
            f'data_dir = "{data_dir}"\n\n[dicom]\nport = 0\n\n[http]\nport = 0\n\n'
            f'[database]\nurl = "{url}"\n{extra}')
