"""Two `twinpacs serve` processes on this machine that replicate to each other: what the
demo runs and what the drills rehearse on."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from .synthetic import StudySpec, make_studies, write_study


@dataclass(frozen=True)
class PairSite:
    name: str
    role: str
    ae_title: str
    dicom_port: int
    http_port: int
    hl7_port: int | None = None  # the HL7 listener's port; None: no listener

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def command(self, root: Path, peer: PairSite) -> list[str]:
        data_dir = (root / self.name).resolve()
        return [
            sys.executable, "-m", "twinpacs", "serve",
            "--data-dir", str(data_dir), "--database-url", f"sqlite:///{data_dir / 'index.sqlite3'}",
            "--site-name", self.name, "--role", self.role,
            "--ae-title", self.ae_title, "--peer", f"{peer.name}={peer.url}",
            "--dicom-port", str(self.dicom_port), "--http-port", str(self.http_port),
            "--move-destination", f"{peer.ae_title}=127.0.0.1:{peer.dicom_port}",
            *(["--hl7-port", str(self.hl7_port)] if self.hl7_port is not None else []),
        ]


@dataclass
class LocalPair:
    root: Path
    a: PairSite
    b: PairSite
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def peer_of(self, site: PairSite) -> PairSite:
        return self.b if site is self.a else self.a

    def start(self, site: PairSite, quiet: bool = False, timeout: float = 60) -> None:
        output = subprocess.DEVNULL if quiet else None
        process = subprocess.Popen(site.command(self.root, self.peer_of(site)), stdout=output, stderr=output)
        self.processes[site.name] = process
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise SystemExit(f"site {site.name} did not start (exit code {process.returncode}; its message is "
                                 f"above, or is port {site.dicom_port} or {site.http_port} in use?)")
            try:
                if httpx.get(f"{site.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise SystemExit(f"site {site.name} was not ready after {timeout:.0f} s")

    def stop(self, site: PairSite) -> None:
        process = self.processes.pop(site.name, None)
        if process and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)

    def stop_all(self) -> None:
        for site in (self.a, self.b):
            self.stop(site)

    def running(self) -> bool:
        return all(p.poll() is None for p in self.processes.values())

    def load_studies(self, site: PairSite, count: int, seed: int = 0, patient_prefix: str = "TP") -> int:
        """Send `count` synthetic studies to `site` over STOW-RS; returns the instances sent."""
        base = StudySpec(patient_id=f"{patient_prefix}0000", series=2, instances_per_series=4,
                         rows=128, columns=128, seed=seed)
        folder = self.root / "samples" / f"{patient_prefix}{seed}"
        files = [p for spec in make_studies(count, base) for p in write_study(spec, folder / spec.patient_id)]
        boundary = "twinpacs-boundary"
        body = b"".join(
            f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode() + p.read_bytes() + b"\r\n"
            for p in files
        ) + f"--{boundary}--\r\n".encode()
        headers = {"Content-Type": f'multipart/related; type="application/dicom"; boundary={boundary}'}
        response = httpx.post(f"{site.url}/dicom-web/studies", content=body, headers=headers, timeout=120)
        response.raise_for_status()
        return len(files)

    def api(self, site: PairSite, method: str, path: str, **kwargs: Any) -> Any:
        return httpx.request(method, f"{site.url}{path}", timeout=180, **kwargs).json()
