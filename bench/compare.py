#!/usr/bin/env python3
"""twinpacs vs. Orthanc, side by side on this machine, with the same data and the same clients.

    bench/compare                       # 40 studies x 50 instances (2,000, 256x256 16-bit)
    bench/compare --studies 200         # 10,000 instances
    bench/compare --rounds 3            # each archive 3 times, alternating; medians
    bench/compare --json out.json --keep

For each archive in turn (the other one stopped, so both get the same 2 cores):
  1. start it empty (own temp data folder on the project's disk, free loopback ports),
     run bench/run.py against it (storescu ingest on 1 and 2 associations, C-FIND,
     QIDO-RS, C-GET, C-MOVE, WADO-RS study and /metadata), stop it;
  2. start it empty again, STOW-RS the whole dataset in batches of 50 instances per
     request (one client, keep-alive), stop it.
Then print one table (metric, twinpacs, Orthanc, ratio twinpacs/Orthanc, issue 4 target,
met or not) and write a JSON file. With --rounds N both steps run N times per archive, the
archives alternating which goes first, and each figure is the median of its N runs: on a
machine whose speed drifts (shared cores, a disk whose fsync takes 0.5 ms one minute and
1.8 ms the next), one run's ratios move by 20-30%.

Orthanc comes from Debian's `orthanc` and `orthanc-dicomweb` packages (installed with
apt-get when missing, their system service forbidden to start). It runs from a config of
this script's own with TCP_NODELAY=1, and with an LD_PRELOAD shim (bench/loopback_bind.c,
compiled here with gcc) that turns its wildcard binds into loopback binds: Orthanc 1.10
has no bind-address setting. twinpacs is secure by default (issue 9): each start gets a
fresh random bearer token (role service) and admits exactly the bench's calling AE title
(SiteAccess below, shared by the other bench scripts). The script checks that every
listening socket of the servers it started is on loopback, and stops both servers by the
pids it started, also on Ctrl-C, SIGTERM or error.

Both servers also run with bench/sync_count.c preloaded, which counts their fsync-family
calls: the table says how many each makes per stored instance, i.e. what its acknowledgement
guarantees. (Orthanc 1.10.1 here syncs its SQLite index once per instance and never its
image files; twinpacs fsyncs the file, its folder and the index before it answers, G1.)
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import os
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PY = sys.executable
HOST = "127.0.0.1"
CALLING_AET = "BENCHSCU"
MOVE_AET = "BENCHMOVE"
ORTHANC_PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")
READY = re.compile(r"twinpacs ready: .* DICOM [^:]+:(\d+), HTTP http://[^:]+:(\d+)")
START_TIMEOUT = 60.0  # seconds for a server to come up
# On this machine's ext4 (no journal), the kernel skips inodes freed in the last 5 minutes
# while their inode table block is dirty (recently_deleted), looking each one up: after a
# previous run's cleanup deleted ~12,000 files, every file created near there cost 0.4-0.8 ms
# of kernel time instead of 25 us, and twinpacs' ingest (all its new files start in one
# folder) measured 190-300 instead of ~420 inst/s, Orthanc's much less. The run waits for that.
PROBE_FILES = 200  # empty files created per probe, kept (deleting them would slow the next)
SLOW_CREATE_US = 100.0
SETTLE_TIMEOUT = 600.0  # seconds to wait for file creation to be fast again
STOP_TIMEOUT = 30.0  # seconds for a server to exit after SIGTERM before SIGKILL

# (key, label, run.py phase, run.py "what" prefix, figure, higher is better, target ratio)
METRICS: list[tuple[str, str, str, str, str, bool, float | None]] = [
    ("ingest_x1", "ingest storescu, 1 assoc (inst/s)", "ingest", "storescu x1 ", "instances_per_s", True, 1.0),
    ("ingest_x2", "ingest storescu, 2 assoc (inst/s)", "ingest", "storescu x2 ", "instances_per_s", True, 1.0),
    ("stow", "ingest STOW-RS, 50/request (inst/s)", "stow", "", "instances_per_s", True, 2.0),
    ("assoc", "association setup (ms)", "find", "association setup", "setup_ms", False, None),
    ("find_pid", "C-FIND PatientID median (ms)", "find", "C-FIND PatientID=", "median_ms", False, 1.0),
    ("find_date", "C-FIND date range median (ms)", "find", "C-FIND StudyDate=", "median_ms", False, 1.0),
    ("qido_pid", "QIDO-RS PatientID median (ms)", "qido", "QIDO-RS PatientID=", "median_ms", False, 0.7),
    ("qido_date", "QIDO-RS date range median (ms)", "qido", "QIDO-RS StudyDate=", "median_ms", False, 0.7),
    ("get", "C-GET study median (s)", "get", "C-GET study", "median_s", False, 1.0),
    ("move", "C-MOVE study median (s)", "move", "C-MOVE study", "median_s", False, 0.2),
    ("wado", "WADO-RS study median (s)", "wado", "WADO-RS study (multipart)", "median_s", False, 1.0),
    ("metadata", "WADO-RS /metadata median (s)", "wado", "WADO-RS study metadata", "median_s", False, 0.5),
    # What each acknowledgement costs in durability: fsync-family calls per stored instance.
    ("syncs_x1", "syncs per instance, storescu 1 assoc", "ingest", "storescu x1 ", "syncs_per_instance", False, None),
    ("syncs_stow", "syncs per instance, STOW-RS", "stow", "", "syncs_per_instance", False, None),
]


class BenchError(Exception):
    pass


# ---------------------------------------------------------------- access to a secured twinpacs

def bearer(token: str | None) -> dict[str, str]:
    """The header a DICOMweb client sends; none without a token (Orthanc, an open archive)."""
    return {"Authorization": f"Bearer {token}"} if token else {}


@dataclass(frozen=True)
class SiteAccess:
    """What a bench needs to get past a twinpacs site that refuses anonymous HTTP and unknown
    calling AEs: a fresh random bearer token acting as `role`, and exactly the calling AE titles
    the bench uses, each with the DICOM rights it needs ("store,find,get,move")."""

    aes: dict[str, str] = field(default_factory=dict)
    role: str = "service"  # STOW-RS, QIDO-RS, WADO-RS and the peer routes (audit digests)
    token: str = field(default_factory=lambda: secrets.token_urlsafe(32))  # 43 characters

    @property
    def headers(self) -> dict[str, str]:
        return bearer(self.token)

    def serve_flags(self) -> list[str]:
        """For `twinpacs serve` (the token is on its command line: loopback, this run only)."""
        flags = ["--api-token", f"{self.token}={self.role}"]
        for ae, rights in self.aes.items():
            flags += ["--allow-ae", f"{ae}={rights}"]
        return flags

    def settings(self) -> dict[str, Any]:
        """The same as load_settings overrides, for a site built in-process."""
        return {"security": {"api_tokens": [{"name": "bench", "token": self.token, "role": self.role}]},
                "dicom": {"allowed_aes": {ae: {"rights": rights.split(",")} for ae, rights in self.aes.items()}}}


def source_state() -> str:
    """The twinpacs code measured: commit, and whether src/ has uncommitted changes."""
    try:
        head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, timeout=10, check=False).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "src"], capture_output=True,
                               text=True, timeout=10, check=False).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return f"{head or 'unknown'}{' + uncommitted changes in src/' if dirty else ''}"


def log(msg: str) -> None:
    print(f"[compare {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def _die_with_parent() -> None:
    """In the child before exec: get SIGTERM if this script dies without cleaning up."""
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    os.setsid()  # a terminal's Ctrl-C reaches this script only; it stops the servers itself


# ---------------------------------------------------------------- Orthanc install, shim

def sudo() -> list[str]:
    return [] if os.geteuid() == 0 else ["sudo"]


def orthanc_binary() -> str | None:
    return shutil.which("Orthanc") or next(
        (p for p in ("/usr/sbin/Orthanc", "/usr/bin/Orthanc") if os.access(p, os.X_OK)), None)


def ensure_orthanc() -> str:
    """Install Debian's orthanc + orthanc-dicomweb when missing, never starting the service."""
    binary = orthanc_binary()
    if binary and ORTHANC_PLUGIN.exists():
        return binary
    log("installing Debian packages orthanc, orthanc-dicomweb (system service kept stopped)")
    policy = Path("/usr/sbin/policy-rc.d")
    saved = Path(str(policy) + ".twinpacs-saved")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    if policy.exists():
        subprocess.run([*sudo(), "mv", str(policy), str(saved)], check=True)
    try:
        subprocess.run([*sudo(), "tee", str(policy)], check=True, stdout=subprocess.DEVNULL,
                       input=b"#!/bin/sh\n# twinpacs bench/compare: no service starts while packages install\nexit 101\n")
        subprocess.run([*sudo(), "chmod", "755", str(policy)], check=True)
        subprocess.run([*sudo(), "apt-get", "update", "-qq"], check=True, env=env, timeout=600)
        subprocess.run([*sudo(), "apt-get", "install", "-y", "-qq", "orthanc", "orthanc-dicomweb"],
                       check=True, env=env, timeout=1200, stdout=subprocess.DEVNULL)
    finally:
        subprocess.run([*sudo(), "rm", "-f", str(policy)], check=False)
        if saved.exists():
            subprocess.run([*sudo(), "mv", str(saved), str(policy)], check=False)
    # In case it was started anyway (no policy-rc.d honoured): stop and disable it.
    if shutil.which("systemctl") and Path("/run/systemd/system").is_dir():
        subprocess.run([*sudo(), "systemctl", "disable", "--now", "orthanc"], check=False,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)
    if Path("/etc/init.d/orthanc").exists():
        subprocess.run([*sudo(), "/etc/init.d/orthanc", "stop"], check=False,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)
        if shutil.which("update-rc.d"):
            subprocess.run([*sudo(), "update-rc.d", "orthanc", "disable"], check=False,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)
    binary = orthanc_binary()
    if not binary or not ORTHANC_PLUGIN.exists():
        raise BenchError("Orthanc or its DICOMweb plugin still missing after apt-get install")
    return binary


def build_shim(out: Path, name: str) -> Path:
    """bench/NAME.c compiled to OUT/NAME.so, for LD_PRELOAD."""
    gcc = shutil.which("gcc") or shutil.which("cc")
    if not gcc:
        raise BenchError(f"gcc not found: needed to build bench/{name}.c (apt-get install gcc)")
    so = out / f"{name}.so"
    subprocess.run([gcc, "-shared", "-fPIC", "-O2", "-o", str(so), str(HERE / f"{name}.c"), "-ldl"],
                   check=True, timeout=120)
    return so


def counting_syncs(work: Path, shims: list[Path]) -> tuple[dict[str, str], Path]:
    """The environment that preloads `shims` with bench/sync_count.so among them, and the
    counter file it counts into (fresh, zero)."""
    counter = work / "syncs.count"
    counter.write_bytes(bytes(8))
    return {"LD_PRELOAD": " ".join(map(str, shims)), "SYNC_COUNT_FILE": str(counter)}, counter


def syncs_made(counter: Path) -> int:
    return int.from_bytes(counter.read_bytes()[:8], "little")


# ---------------------------------------------------------------- listening sockets

def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    with contextlib.suppress(OSError):
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
    return inodes


def _pid_tree(pid: int) -> list[int]:
    """pid and its descendants (twinpacs may run worker processes)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError), open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(entry))
    out: list[int] = []
    todo = [pid]
    while todo and len(out) < 10_000:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def listening(pid: int) -> list[tuple[str, int]]:
    """(address, port) of every TCP socket in LISTEN state owned by pid or its children."""
    inodes = set().union(*(_socket_inodes(p) for p in _pid_tree(pid)))
    found = []
    for table, v6 in (("/proc/net/tcp", False), ("/proc/net/tcp6", True)):
        with contextlib.suppress(OSError), open(table) as f:
            for line in f.readlines()[1:]:
                parts = line.split()
                if parts[3] != "0A" or parts[9] not in inodes:  # 0A = LISTEN
                    continue
                addr_hex, port_hex = parts[1].split(":")
                raw = bytes.fromhex(addr_hex)
                if v6:
                    raw = b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4))
                    addr = socket.inet_ntop(socket.AF_INET6, raw)
                else:
                    addr = socket.inet_ntop(socket.AF_INET, raw[::-1])
                found.append((addr, int(port_hex, 16)))
    return found


def check_loopback(name: str, pid: int) -> None:
    socks = listening(pid)
    bad = [(a, p) for a, p in socks if not (a.startswith("127.") or a in ("::1", "::ffff:127.0.0.1"))]
    if bad:
        raise BenchError(f"{name} listens beyond loopback: {bad}; stopping")
    log(f"{name} pid {pid} listens on {', '.join(f'{a}:{p}' for a, p in sorted(socks))} (loopback only)")


# ---------------------------------------------------------------- servers

@dataclass
class Server:
    name: str
    aet: str
    dicom_port: int
    http_port: int
    process: subprocess.Popen[bytes]
    log_file: Path
    access: SiteAccess | None = None  # None: an archive open to anonymous clients (Orthanc here)
    syncs: Path | None = None  # the counter of bench/sync_count.c in this server, if preloaded

    @property
    def headers(self) -> dict[str, str]:
        return self.access.headers if self.access else {}

    @property
    def dicomweb(self) -> str:
        return f"http://{HOST}:{self.http_port}/dicom-web"

    def tail(self) -> str:
        with contextlib.suppress(OSError):
            return self.log_file.read_text(errors="replace")[-3000:]
        return ""

    def stop(self) -> None:
        p = self.process
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                log(f"{self.name} pid {p.pid} ignored SIGTERM for {STOP_TIMEOUT:.0f} s: SIGKILL")
                p.kill()
                p.wait(10)
        log(f"{self.name} pid {p.pid} stopped (exit {p.returncode})")


def _listens(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=1):
        return True
    return False


def start_orthanc(binary: str, shims: list[Path], work: Path, move_port: int) -> Server:
    work.mkdir(parents=True)
    dicom_port, http_port = free_port(), free_port()
    config = {
        "Name": "twinpacs-bench-orthanc",
        "StorageDirectory": str(work / "storage"),
        "IndexDirectory": str(work / "index"),
        "DicomAet": "ORTHANC", "DicomPort": dicom_port, "HttpPort": http_port,
        "RemoteAccessAllowed": False, "AuthenticationEnabled": False,
        "Plugins": [str(ORTHANC_PLUGIN)],
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/"},
        # BENCHSCU must be known or Orthanc refuses C-FIND/C-GET/C-MOVE from it.
        "DicomModalities": {"benchscu": [CALLING_AET, HOST, free_port()],
                            "benchmove": [MOVE_AET, HOST, move_port]},
        "SaveJobs": False,
    }
    cfg = work / "orthanc.json"
    cfg.write_text(json.dumps(config, indent=2))
    log_file = work / "orthanc.log"
    preload, counter = counting_syncs(work, shims)
    env = {**os.environ, "TCP_NODELAY": "1", **preload}
    with log_file.open("wb") as out:
        proc = subprocess.Popen([binary, str(cfg)], stdout=out, stderr=subprocess.STDOUT, env=env,
                                preexec_fn=_die_with_parent)  # noqa: PLW1509 (no threads here)
    server = Server("Orthanc", "ORTHANC", dicom_port, http_port, proc, log_file, syncs=counter)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        with httpx.Client(timeout=5, trust_env=False) as http:
            while True:
                if proc.poll() is not None:
                    raise BenchError(f"Orthanc exited with {proc.returncode}:\n{server.tail()}")
                with contextlib.suppress(httpx.HTTPError):
                    if http.get(f"http://{HOST}:{http_port}/system").status_code == 200 and _listens(dicom_port):
                        break
                if time.monotonic() > deadline:
                    raise BenchError(f"Orthanc not up within {START_TIMEOUT:.0f} s:\n{server.tail()}")
                time.sleep(0.1)
        check_loopback("Orthanc", proc.pid)
    except BaseException:
        server.stop()
        raise
    return server


def start_twinpacs(shims: list[Path], work: Path, move_port: int) -> Server:
    work.mkdir(parents=True)
    log_file = work / "twinpacs.log"
    access = SiteAccess({CALLING_AET: "store,find,get,move"})  # run.py's storescu/findscu/getscu/movescu
    cmd = [str(ROOT / ".venv" / "bin" / "twinpacs"), "serve", "--data-dir", str(work / "data"),
           "--role", "active", "--no-peers", "--database-url", f"sqlite:///{(work / 'data').resolve()}/index.sqlite3",
           "--ae-title", "TWINPACS", "--dicom-port", "0", "--http-port", "0",
           "--move-destination", f"{MOVE_AET}={HOST}:{move_port}", *access.serve_flags()]
    preload, counter = counting_syncs(work, shims)
    with log_file.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **preload},
                                preexec_fn=_die_with_parent)  # noqa: PLW1509 (no threads here)
    server = Server("twinpacs", "TWINPACS", 0, 0, proc, log_file, access, counter)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if proc.poll() is not None:
                raise BenchError(f"twinpacs exited with {proc.returncode}:\n{server.tail()}")
            found = READY.search(server.tail())
            if found:
                server.dicom_port, server.http_port = int(found[1]), int(found[2])
                break
            if time.monotonic() > deadline:
                raise BenchError(f"twinpacs not ready within {START_TIMEOUT:.0f} s:\n{server.tail()}")
            time.sleep(0.1)
        check_loopback("twinpacs", proc.pid)
    except BaseException:
        server.stop()
        raise
    return server


@contextlib.contextmanager
def running(start: Any, *a: Any) -> Iterator[Server]:
    server = start(*a)
    try:
        yield server
    finally:
        server.stop()


# ---------------------------------------------------------------- measurements

def run_bench(server: Server, args: argparse.Namespace, dataset: Path, move_port: int, out: Path) -> dict[str, Any]:
    cmd = [PY, str(HERE / "run.py"), "--host", HOST, "--port", str(server.dicom_port), "--aet", server.aet,
           "--calling-aet", CALLING_AET, "--dicomweb", server.dicomweb, "--dataset", str(dataset),
           "--associations", args.associations, "--repeat", str(args.repeat),
           "--retrieve-repeat", str(args.retrieve_repeat), "--move-dest", f"{MOVE_AET}={move_port}",
           "--timeout", str(args.timeout), "--json", str(out), "--scratch", str(out.parent / "scratch")]
    log(f"bench/run.py against {server.name} (load {load()})")
    # The token through run.py's environment, not its command line; none for an open archive.
    env = {k: v for k, v in os.environ.items() if k != "TWINPACS_TOKEN"}
    if server.syncs:
        env["SYNC_COUNT_FILE"] = str(server.syncs)  # run.py reads the server's count around each ingest
    if server.access:
        env["TWINPACS_TOKEN"] = server.access.token
    # Bounded: every run.py phase has its own timeouts; this is the backstop.
    subprocess.run(cmd, check=True, timeout=args.timeout * 20, env=env)
    if server.process.poll() is not None:
        raise BenchError(f"{server.name} died during the run:\n{server.tail()}")
    return json.loads(out.read_text())


def multipart(files: list[Path], boundary: str) -> bytes:
    chunks = []
    for f in files:
        chunks += [f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode(), f.read_bytes(), b"\r\n"]
    chunks.append(f"--{boundary}--\r\n".encode())
    return b"".join(chunks)


def stow(server: Server, files: list[Path], batch: int, timeout: float) -> dict[str, Any]:
    """STOW-RS every file, `batch` per request, one keep-alive client; time only the requests."""
    boundary = "twinpacs-bench-stow-boundary-7d1f"
    headers = {"Content-Type": f'multipart/related; type="application/dicom"; boundary={boundary}',
               "Accept": "application/dicom+json", **server.headers}
    url = f"{server.dicomweb}/studies"
    total_s, nbytes, stored = 0.0, 0, 0
    per_request = []
    syncs_before = syncs_made(server.syncs) if server.syncs else 0
    log(f"STOW-RS {len(files)} instances to {server.name}, {batch} per request (load {load()})")
    with httpx.Client(timeout=timeout, trust_env=False) as http:
        for k in range(0, len(files), batch):
            body = multipart(files[k:k + batch], boundary)
            t = time.perf_counter()
            r = http.post(url, content=body, headers=headers)
            reply = r.content
            elapsed = time.perf_counter() - t
            if r.status_code != 200:
                raise BenchError(f"STOW-RS to {server.name}: HTTP {r.status_code}: {reply[:200]!r}")
            doc = json.loads(reply) if reply.strip() else {}
            failed = doc.get("00081198", {}).get("Value", [])
            ok = doc.get("00081199", {}).get("Value", [])
            if failed or len(ok) != len(files[k:k + batch]):
                raise BenchError(f"STOW-RS to {server.name}: {len(ok)} stored, {len(failed)} failed "
                                 f"of {len(files[k:k + batch])}")
            total_s += elapsed
            per_request.append(elapsed)
            nbytes += sum(f.stat().st_size for f in files[k:k + batch])
            stored += len(ok)
    return {"instances": stored, "bytes": nbytes, "seconds": total_s, "requests": len(per_request),
            "batch": batch, "instances_per_s": stored / total_s, "MB_per_s": nbytes / total_s / 1e6,
            "median_request_s": statistics.median(per_request),
            **({"syncs_per_instance": (syncs_made(server.syncs) - syncs_before) / stored} if server.syncs else {})}


def dataset_files(dataset: Path) -> list[Path]:
    return sorted(p for p in dataset.rglob("*.dcm") if p.is_file()) or \
        sorted(p for p in dataset.rglob("*") if p.is_file() and p.name != ".complete")


def ensure_dataset(args: argparse.Namespace) -> Path:
    key = f"s{args.studies}-x{args.series}-i{args.instances}-{args.rows}x{args.cols}"
    ds = args.out / f"ds-{key}"
    marker = ds / ".complete"
    if marker.exists():
        log(f"dataset {ds} (already generated; same arguments give byte-identical files)")
        return ds
    if ds.exists():
        shutil.rmtree(ds)
    log(f"generating dataset {ds}")
    subprocess.run([PY, str(HERE / "generate.py"), "--out", str(ds), "--studies", str(args.studies),
                    "--series", str(args.series), "--instances", str(args.instances),
                    "--rows", str(args.rows), "--cols", str(args.cols)], check=True, timeout=3600)
    marker.write_text(key + "\n")
    return ds


# ---------------------------------------------------------------- report

def pick(report: dict[str, Any] | None, phase: str, prefix: str, figure: str) -> float | str | None:
    if report is None:
        return None
    if phase == "stow":
        return report.get("stow", {}).get(figure) if "error" not in report.get("stow", {}) \
            else f"failed: {report['stow']['error']}"
    for row in report.get("results", []):
        if row["phase"] == phase and row["what"].startswith(prefix):
            if "error" in row["figures"]:
                return f"failed: {row['figures']['error']}"
            return row["figures"].get(figure)
    return None


def fmt(v: float | str | None) -> str:
    if v is None:
        return "-"
    if isinstance(v, str):
        return v.splitlines()[0][:40]
    return f"{v:.1f}" if v >= 100 else f"{v:.3f}" if v < 1 else f"{v:.2f}"


def median_of(reports: list[dict[str, Any]], phase: str, prefix: str, figure: str) -> float | str | None:
    """A figure's median over the rounds; a failure in any round is what is shown."""
    values = [pick(report, phase, prefix, figure) for report in reports]
    failed = [v for v in values if isinstance(v, str)]
    if failed:
        return failed[0]
    numbers = [v for v in values if v is not None]
    return statistics.median(numbers) if numbers else None


def build_table(reports: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    rows = []
    for key, label, phase, prefix, figure, higher, target in METRICS:
        t = median_of(reports.get("twinpacs", []), phase, prefix, figure)
        o = median_of(reports.get("orthanc", []), phase, prefix, figure)
        ratio = t / o if isinstance(t, (int, float)) and isinstance(o, (int, float)) and o else None
        met = None
        if ratio is not None and target is not None:
            met = ratio >= target if higher else ratio <= target
        rows.append({"key": key, "metric": label, "twinpacs": t, "orthanc": o, "ratio": ratio,
                     "target": None if target is None else (">=" if higher else "<=") + f" {target:g}",
                     "met": met})
    return rows


def print_table(rows: list[dict[str, Any]]) -> None:
    head = ("metric", "twinpacs", "Orthanc", "ratio", "target", "met")
    lines = [[r["metric"], fmt(r["twinpacs"]), fmt(r["orthanc"]),
              "-" if r["ratio"] is None else f"{r['ratio']:.2f}x",
              "-" if r["target"] is None else r["target"] + "x",
              {True: "yes", False: "NO", None: "-"}[r["met"]]] for r in rows]
    widths = [max(len(x) for x in col) for col in zip(head, *lines)]
    print()
    for line in (list(head), ["-" * w for w in widths], *lines):
        print("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(line, widths))))


def create_cost_us(folder: Path) -> float:
    """Microseconds per empty file created in a new folder under `folder`."""
    probe = Path(tempfile.mkdtemp(prefix="create-probe-", dir=folder))
    t = time.perf_counter()
    for i in range(PROBE_FILES):
        os.close(os.open(probe / str(i), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
    return (time.perf_counter() - t) / PROBE_FILES * 1e6


def settle(folder: Path) -> float:
    """Wait (bounded) until creating a file in `folder` is fast; the last cost measured."""
    deadline = time.monotonic() + SETTLE_TIMEOUT
    while True:
        cost = create_cost_us(folder)
        if cost <= SLOW_CREATE_US or time.monotonic() > deadline:
            return cost
        log(f"creating a file under {folder} takes {cost:.0f} us, not ~25 (many files deleted there recently): "
            f"waiting, at most {max(0, deadline - time.monotonic()):.0f} s more")
        time.sleep(20)


# ---------------------------------------------------------------- driver

def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--studies", type=int, default=40)
    p.add_argument("--series", type=int, default=1, help="series per study")
    p.add_argument("--instances", type=int, default=50, help="instances per series")
    p.add_argument("--rows", type=int, default=256)
    p.add_argument("--cols", type=int, default=256)
    p.add_argument("--associations", default="1,2", help="storescu ingest runs (default 1,2)")
    p.add_argument("--repeat", type=int, default=50, help="queries per C-FIND / QIDO-RS figure")
    p.add_argument("--retrieve-repeat", type=int, default=10,
                   help="whole-study retrievals per method (their median is reported)")
    p.add_argument("--stow-batch", type=int, default=50, help="instances per STOW-RS request")
    p.add_argument("--only", choices=("twinpacs", "orthanc"), help="measure one archive only")
    p.add_argument("--rounds", type=int, default=1,
                   help="runs of each archive, alternating; the table shows each figure's median")
    p.add_argument("--timeout", type=int, default=300, help="seconds per tool run / network operation")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "out",
                   help="datasets and server folders go here (default bench/out, git-ignored)")
    p.add_argument("--json", type=Path, default=None, help="default: OUT/compare.json")
    p.add_argument("--keep", action="store_true", help="keep the servers' data folders afterwards")
    a = p.parse_args(argv)
    a.out = a.out.resolve()
    a.json = a.json or a.out / "compare.json"
    return a


def _sigterm(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _sigterm)
    args.out.mkdir(parents=True, exist_ok=True)
    binary = None if args.only == "twinpacs" else ensure_orthanc()
    for tool in ("storescu", "getscu", "movescu", "storescp"):
        if not shutil.which(tool):
            raise BenchError(f"{tool} not found: DCMTK is needed (scripts/setup.sh installs it)")
    dataset = ensure_dataset(args)
    files = dataset_files(dataset)
    work = Path(tempfile.mkdtemp(prefix="compare-", dir=args.out))  # the project's disk, not tmpfs
    log(f"servers' data under {work}; load average {load()} on {os.cpu_count()} CPUs")
    reports: dict[str, list[dict[str, Any]]] = {}
    loads: dict[str, str] = {"start": load()}
    code = source_state()
    try:
        create_us = settle(work)  # inside the try: an interrupted wait still removes `work`
        if create_us > SLOW_CREATE_US:
            log(f"WARNING: file creation under {work} still takes {create_us:.0f} us: ingest figures are skewed")
        plan: list[tuple[str, Any]] = []
        sync_count = build_shim(work, "sync_count")
        if args.only != "orthanc":
            plan.append(("twinpacs", lambda w, m: start_twinpacs([sync_count], w, m)))
        if binary:
            loopback = build_shim(work, "loopback_bind")
            plan.append(("orthanc", lambda w, m: start_orthanc(binary, [loopback, sync_count], w, m)))
        for round_ in range(args.rounds):
            # Alternating which archive goes first spreads a drift of the machine's speed.
            for name, start in plan if round_ % 2 == 0 else plan[::-1]:
                run = work / f"{name}-{round_}"
                move_port = free_port()
                loads[f"{name} {round_ + 1}"] = load()
                with running(start, run / "run", move_port) as server:
                    report = run_bench(server, args, dataset, move_port, run / "run.json")
                try:
                    with running(start, run / "stow", free_port()) as server:
                        report["stow"] = stow(server, files, args.stow_batch, args.timeout)
                except BenchError as e:
                    report["stow"] = {"error": str(e)}
                log(f"{name}: STOW-RS {report['stow']}")
                reports.setdefault(name, []).append(report)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    loads["end"] = load()
    table = build_table(reports)
    print(f"\ntwinpacs code: {code} (at start); {args.rounds} round(s), medians")
    print(f"dataset: {len(files)} instances ({args.studies} studies x {args.series} series x "
          f"{args.instances}, {args.rows}x{args.cols} 16-bit); load average (1/5/15 min) "
          + ", ".join(f"{k} {v}" for k, v in loads.items()) + f"; {os.cpu_count()} CPUs")
    print(f"file creation in the servers' data folder at the start: {create_us:.0f} us per file")
    print_table(table)
    doc = {"date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "dataset": str(dataset), "instances": len(files),
           "twinpacs_code": code, "create_us": create_us,
           "args": {k: str(v) for k, v in vars(args).items()}, "load": loads, "table": table,
           "runs": reports}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"\nJSON: {args.json}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as e:
        print(f"bench/compare: {e}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("bench/compare: interrupted; servers stopped", file=sys.stderr)
        sys.exit(130)
