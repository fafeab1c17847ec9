"""Two `twinpacs serve` processes on this machine that replicate to each other: what the
demo runs and what the drills rehearse on. Each site's configuration file (written here, beside
its data) gives the token it sends its peer, the peer's token it accepts (role service), and
one administrator token the pair itself uses to load studies and call the API."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx

from .core.accounts import Accounts, bearer, new_secret
from .index.accounts import SqlAccountStore
from .index.database import Database
from .synthetic import StudySpec, make_studies, write_study


@dataclass(frozen=True)
class PairSite:
    name: str
    role: str
    ae_title: str
    dicom_port: int
    http_port: int
    hl7_port: int | None = None  # the HL7 listener's port; None: no listener
    allowed_aes: tuple[str, ...] = ()  # --allow-ae values: calling AEs besides the partner site's

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def data_dir(self, root: Path) -> Path:
        return (root / self.name).resolve()

    def database_url(self, root: Path) -> str:
        return f"sqlite:///{self.data_dir(root) / 'index.sqlite3'}"

    def command(self, root: Path, peer: PairSite) -> list[str]:
        data_dir = self.data_dir(root)
        return [
            sys.executable, "-m", "twinpacs", "serve", "--config", str(root / f"{self.name}.toml"),
            "--data-dir", str(data_dir), "--database-url", self.database_url(root),
            "--site-name", self.name, "--role", self.role, "--ae-title", self.ae_title,
            "--dicom-port", str(self.dicom_port), "--http-port", str(self.http_port),
            "--move-destination", f"{peer.ae_title}=127.0.0.1:{peer.dicom_port}",
            # The partner stores here when it answers a C-MOVE to this site.
            *(a for ae in (f"{peer.ae_title}=store", *self.allowed_aes) for a in ("--allow-ae", ae)),
            *(["--hl7-port", str(self.hl7_port)] if self.hl7_port is not None else []),
        ]


@dataclass
class LocalPair:
    root: Path
    a: PairSite
    b: PairSite
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    admin_token: str = field(default_factory=new_secret)  # what the pair (and the demo's user) calls the API with
    # The token each site accepts from its peer (role service), by the accepting site's name.
    peer_tokens: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.peer_tokens = {self.a.name: new_secret(), self.b.name: new_secret()}

    @property
    def headers(self) -> dict[str, str]:
        return bearer(self.admin_token)

    def write_config(self, site: PairSite) -> Path:
        """The site's peer (with the token it sends there) and the tokens it accepts."""
        peer = self.peer_of(site)
        path = self.root / f"{site.name}.toml"
        self.root.mkdir(parents=True, exist_ok=True)
        path.write_text(f"""# written by twinpacs (demo/drill pair): tokens are secrets
[[peers]]
name = "{peer.name}"
api_url = "{peer.url}"
dicomweb_url = "{peer.url}/dicom-web"
token = "{self.peer_tokens[peer.name]}"

[security]
api_tokens = [
  {{ name = "{peer.name}", token = "{self.peer_tokens[site.name]}", role = "service" }},
  {{ name = "pair-admin", token = "{self.admin_token}", role = "administrator" }},
]
""", encoding="utf-8")
        path.chmod(0o600)
        return path

    def set_account(self, site: PairSite, name: str, role: str, password: str) -> None:
        """An account at `site` as `twinpacs user add` makes it, before the site starts; one
        left by an earlier run gets the new password."""
        site.data_dir(self.root).mkdir(parents=True, exist_ok=True)
        db = Database(site.database_url(self.root))
        try:
            accounts = Accounts(SqlAccountStore(db), lambda: datetime.now(timezone.utc))
            if any(a.name == name for a in accounts.list()):
                accounts.set_password(name, password)
            else:
                accounts.add(name, role, password)
        finally:
            db.dispose()

    def peer_of(self, site: PairSite) -> PairSite:
        return self.b if site is self.a else self.a

    def start(self, site: PairSite, quiet: bool = False, timeout: float = 60) -> None:
        output = subprocess.DEVNULL if quiet else None
        self.write_config(site)
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
        response = httpx.post(f"{site.url}/dicom-web/studies", content=body, headers={**headers, **self.headers},
                              timeout=120)
        response.raise_for_status()
        return len(files)

    def api(self, site: PairSite, method: str, path: str, **kwargs: Any) -> Any:
        return httpx.request(method, f"{site.url}{path}", timeout=180, headers=self.headers, **kwargs).json()
