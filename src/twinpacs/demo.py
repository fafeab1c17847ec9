"""`twinpacs demo`: two sites on this machine (A active on 11112/8080, B standby on
11113/8081), each a `twinpacs serve` process replicating to the other, with a few
synthetic studies loaded into A."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from .synthetic import StudySpec, make_studies, write_study


@dataclass(frozen=True)
class DemoSite:
    name: str
    role: str
    ae_title: str
    dicom_port: int
    http_port: int

    def command(self, root: Path, peer: DemoSite) -> list[str]:
        return [
            sys.executable, "-m", "twinpacs", "serve",
            "--data-dir", str(root / self.name), "--site-name", self.name, "--role", self.role,
            "--ae-title", self.ae_title, "--peer", f"{peer.name}=http://127.0.0.1:{peer.http_port}",
            "--dicom-port", str(self.dicom_port), "--http-port", str(self.http_port),
            "--move-destination", f"{peer.ae_title}=127.0.0.1:{peer.dicom_port}",
        ]


SITES = (DemoSite("A", "active", "TWINPACS_A", 11112, 8080), DemoSite("B", "standby", "TWINPACS_B", 11113, 8081))


def run_demo(root: Path, studies: int = 3) -> None:
    a, b = SITES
    processes = [subprocess.Popen(a.command(root, b)), subprocess.Popen(b.command(root, a))]
    try:
        for site in SITES:
            _wait_ready(site, processes)
        _load_samples(root, a, studies)
        _print_guide(a, b)
        signal.signal(signal.SIGTERM, _interrupt)
        while all(p.poll() is None for p in processes):
            time.sleep(0.5)
        print("demo: a site stopped on its own; stopping the other", file=sys.stderr)
    except KeyboardInterrupt:
        pass
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            process.wait(timeout=30)


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt


def _wait_ready(site: DemoSite, processes: list[subprocess.Popen[bytes]], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(p.poll() is not None for p in processes):
            raise SystemExit(f"site {site.name} did not start (is port {site.dicom_port} or {site.http_port} in use?)")
        try:
            if httpx.get(f"http://127.0.0.1:{site.http_port}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"site {site.name} was not ready after {timeout:.0f} s")


def _load_samples(root: Path, site: DemoSite, count: int) -> None:
    folder = root / "samples"
    specs = make_studies(count, StudySpec(series=2, instances_per_series=4, rows=128, columns=128))
    files = [path for spec in specs for path in write_study(spec, folder / spec.patient_id)]
    url = f"http://127.0.0.1:{site.http_port}/dicom-web/studies"
    boundary = "twinpacs-demo-boundary"
    body = b"".join(
        f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode() + path.read_bytes() + b"\r\n"
        for path in files
    ) + f"--{boundary}--\r\n".encode()
    headers = {"Content-Type": f'multipart/related; type="application/dicom"; boundary={boundary}'}
    response = httpx.post(url, content=body, headers=headers, timeout=60)
    print(f"demo: loaded {len(files)} synthetic instances ({count} studies) into site {site.name}: HTTP {response.status_code}")


def _print_guide(a: DemoSite, b: DemoSite) -> None:
    print(f"""
twinpacs demo is running; A replicates to B. Ctrl-C stops both sites.
  site A (active):  DICOM {a.ae_title}@127.0.0.1:{a.dicom_port}   http://127.0.0.1:{a.http_port}/
  site B (standby): DICOM {b.ae_title}@127.0.0.1:{b.dicom_port}   http://127.0.0.1:{b.http_port}/
Try:
  .venv/bin/twinpacs sync status --url http://127.0.0.1:{a.http_port}
  .venv/bin/twinpacs failover plan --to B --url http://127.0.0.1:{a.http_port}
  echoscu -aec {a.ae_title} 127.0.0.1 {a.dicom_port}
  findscu -S -aec {a.ae_title} -k QueryRetrieveLevel=STUDY -k PatientName -k StudyInstanceUID 127.0.0.1 {a.dicom_port}
  storescu -aec {a.ae_title} 127.0.0.1 {a.dicom_port} some-file.dcm
  curl http://127.0.0.1:{a.http_port}/api/figures
  curl http://127.0.0.1:{a.http_port}/metrics
""", flush=True)
