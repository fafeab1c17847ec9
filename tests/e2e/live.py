"""A live `twinpacs serve` process on loopback ports it picks itself, and DCMTK helpers."""

from __future__ import annotations

import io
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pydicom

from tests.backend import backend_env

READY = re.compile(r"twinpacs ready: .* DICOM [^:]+:(\d+), HTTP http://[^:]+:(\d+)")
DCMTK_ENV = {**os.environ, "TCP_NODELAY": "1"}  # Debian's DCMTK leaves Nagle on otherwise


@dataclass
class LiveSite:
    data_dir: Path
    ae_title: str
    extra_args: tuple[str, ...] = ()
    fixed_ports: tuple[int, int] = (0, 0)  # (DICOM, HTTP); 0 lets the site pick
    process: subprocess.Popen[str] | None = None
    dicom_port: int = 0
    http_port: int = 0
    log: list[str] = field(default_factory=list)

    @property
    def dicomweb(self) -> str:
        return f"http://127.0.0.1:{self.http_port}/dicom-web"

    def start(self, timeout: float = 60) -> LiveSite:
        self.log = []
        env = {**os.environ, **backend_env(self.data_dir)}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "twinpacs", "serve", "--data-dir", str(self.data_dir),
             "--ae-title", self.ae_title, "--dicom-port", str(self.fixed_ports[0]),
             "--http-port", str(self.fixed_ports[1]), *self.required_args(env), *self.extra_args],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            env=env,
        )
        ready = threading.Event()
        threading.Thread(target=self._drain, args=(ready,), daemon=True).start()
        if not ready.wait(timeout):
            self.kill()
            raise AssertionError("site did not become ready:\n" + "".join(self.log))
        return self

    def required_args(self, env: dict[str, str]) -> list[str]:
        """What `serve` requires and extra_args leave out: a role, the peers (none: a single
        site) and the database (the site's SQLite file, unless `env` names one)."""
        given = set(self.extra_args)
        args = [] if "--role" in given else ["--role", "active"]
        args += [] if "--peer" in given or "--no-peers" in given else ["--no-peers"]
        if "--database-url" not in given and not any(k.upper() == "TWINPACS_DATABASE__URL" for k in env):
            args += ["--database-url", f"sqlite:///{Path(self.data_dir).resolve() / 'index.sqlite3'}"]
        return args

    def _drain(self, ready: threading.Event) -> None:
        assert self.process and self.process.stderr
        for line in self.process.stderr:
            self.log.append(line)
            found = READY.search(line)
            if found:
                self.dicom_port, self.http_port = int(found[1]), int(found[2])
                ready.set()

    def stop(self, timeout: float = 30) -> int:
        assert self.process
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def dcmtk(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), env=DCMTK_ENV, capture_output=True, text=True, timeout=timeout)


def dataset_bytes(data: bytes) -> bytes:
    """The dataset part of a Part 10 file: what a retrieval must return unchanged."""
    fp = io.BytesIO(data)
    pydicom.filereader.read_preamble(fp, False)
    pydicom.filereader._read_file_meta_info(fp)
    return data[fp.tell():]


def wait_for(predicate, timeout: float = 30, interval: float = 0.05) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(interval)
