"""A real third-party archive: Debian's Orthanc, run from a configuration of the test's own.

Orthanc 1.10 always listens on every interface (RemoteAccessAllowed only filters HTTP
clients after the fact; its DICOM port has no bind address at all). So the test's thread
moves into a network namespace of its own, made with unshare(CLONE_NEWNET): an anonymous
namespace with nothing but its own loopback, which the kernel frees once its last socket
and process are gone, even if the test is killed. Everything the test starts from that
thread (Orthanc, the twinpacs site's listeners and workers, the audit subprocess) inherits
it, so Orthanc's 0.0.0.0 is that namespace's loopback only. Only the calling thread moves
(network namespaces are per thread); it is moved back at teardown.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import json
import os
import shutil
import socket
import struct
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

CLONE_NEWNET = 0x40000000
SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1
HOST = "127.0.0.1"
ORTHANC_AET = "ORTHANC"


def orthanc_binary() -> str | None:
    return shutil.which("Orthanc") or next((p for p in ("/usr/sbin/Orthanc", "/usr/bin/Orthanc")
                                            if os.access(p, os.X_OK)), None)


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


@contextlib.contextmanager
def private_network() -> Iterator[None]:
    """Run the rest of this thread's work in a fresh network namespace with loopback up."""
    libc = _libc()
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        if libc.unshare(CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            pytest.skip(f"network namespaces unavailable (unshare(CLONE_NEWNET): {os.strerror(err)})")
        try:
            _loopback_up()
            yield
        finally:
            if libc.setns(home, CLONE_NEWNET) != 0:  # never leave the test runner stranded
                err = ctypes.get_errno()
                raise OSError(err, f"cannot return to the original network namespace: {os.strerror(err)}")
            assert os.stat("/proc/thread-self/ns/net").st_ino == os.fstat(home).st_ino
    finally:
        os.close(home)


def _loopback_up() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("16sH14x", b"lo", 0)
        flags = struct.unpack("16sH14x", fcntl.ioctl(sock, SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(sock, SIOCSIFFLAGS, struct.pack("16sH14x", b"lo", flags | IFF_UP))


def only_loopback_here() -> list[str]:
    """Non-loopback interfaces that are up in this thread's namespace (should be none).
    /proc/thread-self/net reflects the calling thread's namespace."""
    with open("/proc/thread-self/net/dev") as f:
        names = [line.split(":", 1)[0].strip() for line in f.readlines()[2:]]
    return [n for n in names if n != "lo"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


class Orthanc:
    """One Orthanc process, its files in `root`, its ports on this namespace's loopback."""

    def __init__(self, binary: str, root: Path, modalities: dict[str, tuple[str, str, int]],
                 dicom_port: int = 0, http_port: int = 0) -> None:
        self.root = root
        self.dicom_port, self.http_port = dicom_port or free_port(), http_port or free_port()
        self.url = f"http://{HOST}:{self.http_port}"
        self.address = f"{ORTHANC_AET}@{HOST}:{self.dicom_port}"
        root.mkdir(parents=True, exist_ok=True)
        config: dict[str, Any] = {
            "Name": "twinpacs-thirdparty-test",
            "StorageDirectory": str(root / "storage"),
            "IndexDirectory": str(root / "index"),
            "DicomAet": ORTHANC_AET,
            "DicomPort": self.dicom_port,
            "HttpPort": self.http_port,
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": False,
            "Plugins": [],
            "DicomCheckCalledAet": True,
            # The requesters it knows: twinpacs's AE (C-STORE, storage commitment, and where
            # Orthanc opens its association to send the N-EVENT-REPORT) and the auditor.
            "DicomModalities": {name: [aet, host, port] for name, (aet, host, port) in modalities.items()},
            "StorageCommitmentReportsSize": 100,
            "DicomAssociationCloseDelay": 0,  # no lingering association after the report
            "ConcurrentJobs": 2,
            "SaveJobs": False,
            "StableAge": 1,
            "HttpTimeout": 10,
            "DicomScuTimeout": 10,
        }
        self.config_file = root / "orthanc.json"
        self.config_file.write_text(json.dumps(config, indent=2))
        self.log_file = root / "orthanc.log"
        with open(self.log_file, "wb") as log:
            # TCP_NODELAY: DCMTK reads it from the environment; small PDUs are not held back.
            self.process = subprocess.Popen([binary, "--verbose", str(self.config_file)], stdout=log,
                                            stderr=subprocess.STDOUT, env={**os.environ, "TCP_NODELAY": "1"})
        self.http = httpx.Client(base_url=self.url, timeout=10, trust_env=False)
        self._wait_until_up()

    def _wait_until_up(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"Orthanc exited with {self.process.returncode}:\n{self.log()}")
            try:
                if self.http.get("/system").status_code == 200 and _listening(HOST, self.dicom_port):
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"Orthanc did not come up within {timeout:g} s:\n{self.log()}")

    def log(self) -> str:
        return self.log_file.read_text(errors="replace")[-4000:]

    def sop_instance_uids(self) -> set[str]:
        found = self.http.get("/instances", params={"expand": ""}).raise_for_status().json()
        return {i["MainDicomTags"]["SOPInstanceUID"] for i in found}

    def delete(self, sop_instance_uid: str) -> None:
        hits = self.http.post("/tools/lookup", content=sop_instance_uid).raise_for_status().json()
        ids = [h["ID"] for h in hits if h["Type"] == "Instance"]
        assert len(ids) == 1, f"Orthanc lookup of {sop_instance_uid}: {hits}"
        self.http.delete(f"/instances/{ids[0]}").raise_for_status()

    def stop(self) -> None:
        self.http.close()
        if self.process.poll() is None:
            self.process.kill()  # a throwaway instance: its clean shutdown (SIGTERM) takes 3.5 s
        self.process.wait(10)


def _listening(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


@pytest.fixture
def orthanc_binary_path() -> str:
    binary = orthanc_binary()
    if binary is None:
        pytest.skip("Debian's orthanc package is not installed (scripts/setup.sh installs it)")
    return binary


@pytest.fixture
def netns(orthanc_binary_path: str) -> Iterator[None]:
    """This test's thread, and all it starts, in a private network namespace."""
    with private_network():
        assert only_loopback_here() == [], "the private namespace should hold only loopback"
        yield
