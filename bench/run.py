#!/usr/bin/env python3
"""Benchmark any DICOM archive (twinpacs, Orthanc, dcmqrscp, ...) on this machine.

Phases (each skippable with --skip, each reports "failed: reason" instead of crashing):
  ingest  DCMTK storescu, 1 and N parallel associations: instances/s and MB/s
  find    C-FIND study level by PatientID and by StudyDate range (pynetdicom, one
          association, TCP_NODELAY): median / p95 latency per query
  qido    QIDO-RS /studies with the same two queries (httpx, keep-alive)
  get     whole-study C-GET with DCMTK getscu into a temp dir
  move    whole-study C-MOVE with DCMTK movescu to a loopback storescp this script runs
  wado    whole-study WADO-RS (multipart body read fully) and /studies/{uid}/metadata

    .venv/bin/python bench/run.py --host 127.0.0.1 --port 11112 --aet TWINPACS \
        --dicomweb http://127.0.0.1:8080/dicom-web --dataset bench/out/ds --json out.json

A twinpacs site refuses anonymous DICOMweb requests: give a bearer token of role service
(--token, or TWINPACS_TOKEN) and admit the calling AE (--allow-ae BENCHSCU=store,find,get,move).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import httpx
from pydicom import Dataset, dcmread
from pydicom.errors import InvalidDicomError
from pynetdicom import AE
from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelFind as StudyFind

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/ scripts import each other
from compare import bearer

PHASES = ("ingest", "find", "qido", "get", "move", "wado")
# DCMTK disables Nagle by default, but say so explicitly: a 40 ms delayed-ACK stall per
# small PDU would swamp every latency figure.
DCMTK_ENV = {**os.environ, "TCP_NODELAY": "1"}
# storescu / getscu propose only uncompressed syntaxes unless told otherwise, and
# storescu cannot decompress, so compressed datasets need the matching flag.
TS_FLAG = {
    "1.2.840.10008.1.2": "", "1.2.840.10008.1.2.1": "",
    "1.2.840.10008.1.2.1.99": "xd",  # Deflated Explicit VR Little Endian
    "1.2.840.10008.1.2.5": "xr",  # RLE Lossless
    "1.2.840.10008.1.2.4.90": "xv",  # JPEG 2000 Lossless
    "1.2.840.10008.1.2.4.50": "xy",  # JPEG Baseline 8 bit
    "1.2.840.10008.1.2.4.70": "xs",  # JPEG Lossless SV1
    "1.2.840.10008.1.2.4.80": "xt",  # JPEG-LS Lossless
}
STUDY_KEYS = ("StudyInstanceUID", "PatientID", "PatientName", "PatientBirthDate", "StudyDate",
              "StudyTime", "AccessionNumber", "StudyDescription", "ModalitiesInStudy",
              "NumberOfStudyRelatedInstances")
WADO_ACCEPT = ('multipart/related; type="application/dicom"; transfer-syntax=*',
               'multipart/related; type="application/dicom"')


class PhaseError(Exception):
    """A measurement failed; the message becomes the report line."""


@dataclass
class Study:
    uid: str
    patient_id: str
    date: str
    files: list[Path] = field(default_factory=list)
    nbytes: int = 0


@dataclass
class DataSet:
    files: list[Path]
    nbytes: int
    studies: dict[str, Study]
    syntaxes: Counter[str]


@dataclass
class Row:
    phase: str
    what: str
    result: str
    figures: dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------- dataset and helpers

def scan_dataset(root: Path) -> DataSet:
    files, studies, syntaxes, total = [], {}, Counter(), 0
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        try:
            ds = dcmread(path, stop_before_pixels=True,
                         specific_tags=["StudyInstanceUID", "PatientID", "StudyDate"])
        except (InvalidDicomError, OSError):
            continue
        size = path.stat().st_size
        st = studies.setdefault(ds.StudyInstanceUID,
                                Study(ds.StudyInstanceUID, ds.PatientID, ds.get("StudyDate", "")))
        st.files.append(path)
        st.nbytes += size
        files.append(path)
        total += size
        syntaxes[str(ds.file_meta.TransferSyntaxUID)] += 1
    if not files:
        raise SystemExit(f"no DICOM files under {root}")
    return DataSet(files, total, studies, syntaxes)


def target_study(data: DataSet, uid: str | None) -> Study:
    if uid:
        return data.studies[uid]
    # The biggest study (ties: lowest UID) so retrieval figures are not trivially small.
    return max(sorted(data.studies.values(), key=lambda s: s.uid), key=lambda s: len(s.files))


def queries(data: DataSet, study: Study) -> list[tuple[str, dict[str, str], int]]:
    """(label, match keys, studies in the dataset that match) for the two queries."""
    dates = sorted(s.date for s in data.studies.values())
    lo, hi = dates[len(dates) // 4], dates[len(dates) // 2]  # roughly a quarter of the studies
    by_pid = sum(s.patient_id == study.patient_id for s in data.studies.values())
    by_date = sum(lo <= s.date <= hi for s in data.studies.values())
    return [(f"PatientID={study.patient_id}", {"PatientID": study.patient_id}, by_pid),
            (f"StudyDate={lo}-{hi}", {"StudyDate": f"{lo}-{hi}"}, by_date)]


def latency(times: list[float]) -> dict[str, float]:
    ordered = sorted(times)
    p95 = ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]  # nearest-rank percentile
    return {"n": len(times), "median_ms": statistics.median(times) * 1e3, "p95_ms": p95 * 1e3}


def fmt_s(seconds: float) -> str:
    return f"{seconds * 1e3:.1f} ms" if seconds < 1 else f"{seconds:.3f} s"


def fmt_latency(lat: dict[str, float], matches: int, expected: int) -> str:
    return (f"median {lat['median_ms']:.2f} ms, p95 {lat['p95_ms']:.2f} ms "
            f"(n={lat['n']}, {matches} matches; dataset has {expected})")


def ts_flag(data: DataSet, prefix: str) -> list[str]:
    compressed = {ts for ts in data.syntaxes if TS_FLAG.get(ts, "?") != ""}
    if not compressed:
        return []
    if len(compressed) > 1 or TS_FLAG.get(next(iter(compressed))) is None:
        raise PhaseError(f"no DCMTK flag for transfer syntax mix {sorted(compressed)}")
    return [prefix + TS_FLAG[next(iter(compressed))]]


def dcmtk_timeouts(args: argparse.Namespace) -> list[str]:
    return ["-to", "10", "-ta", "30", "-td", str(args.timeout)]


def wait_exact(procs: list[subprocess.Popen[bytes]], timeout: float) -> list[int]:
    """Exit codes, each seen the moment its process ends. Popen.wait(timeout) polls with
    sleeps doubling from 0.5 ms to 50 ms, which rounded every timed tool up to the next step
    (a C-GET of 64.1 ms was the 63.5 ms step; 119 or 165 ms, the 113.5 or 163.5 ms one);
    here a timer kills what still runs at the deadline, and TimeoutExpired follows."""
    expired = threading.Event()

    def kill() -> None:
        expired.set()
        for p in procs:
            if p.poll() is None:
                p.kill()

    timer = threading.Timer(timeout, kill)
    timer.start()
    try:
        rcs = [p.wait() for p in procs]
    finally:
        timer.cancel()
    if expired.is_set():
        raise subprocess.TimeoutExpired(procs[0].args, timeout)
    return rcs


def run_tool(cmd: list[str], timeout: float, log: Path) -> float:
    """Run one DCMTK tool; return wall seconds or raise PhaseError with its last words."""
    t0 = time.perf_counter()
    with log.open("wb") as err:
        try:
            rc = wait_exact([subprocess.Popen(cmd, env=DCMTK_ENV, stdout=err, stderr=err)], timeout)[0]
        except subprocess.TimeoutExpired:
            raise PhaseError(f"{cmd[0]} timed out after {timeout:.0f} s") from None
        except FileNotFoundError:
            raise PhaseError(f"{cmd[0]} not installed") from None
    elapsed = time.perf_counter() - t0
    if rc != 0:
        raise PhaseError(f"{cmd[0]} exit {rc}: {last_error(log)}")
    return elapsed


def last_error(log: Path) -> str:
    """The tool's last error line (DCMTK prefixes F:, E:, W:), else its last line."""
    lines = [ln for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
    for level in ("F:", "E:", "W:"):
        worst = [ln for ln in lines if ln.startswith(level)]
        if worst:
            return worst[-1][:200]
    # storescu logs a refused C-STORE only at info level (-v) and just exits non-zero.
    refused = [ln for ln in lines if "Response (" in ln and "(Success)" not in ln]
    if refused:
        return refused[-1][:200]
    return (lines or ["(no output)"])[-1][:200]


def count_files(folder: Path) -> tuple[int, int]:
    files = [p for p in folder.rglob("*") if p.is_file()]
    return len(files), sum(p.stat().st_size for p in files)


def retrieval_row(phase: str, what: str, times: list[float], got: tuple[int, int], study: Study) -> Row:
    n, nbytes = got
    if n != len(study.files):
        raise PhaseError(f"received {n} of {len(study.files)} instances")
    med = statistics.median(times)
    figures = {"instances": n, "bytes": nbytes, "median_s": med, "min_s": min(times),
               "runs": len(times), "MB_per_s": nbytes / med / 1e6}
    return Row(phase, what, f"{n} inst, {nbytes / 1e6:.1f} MB in median {fmt_s(med)} "
                            f"(min {fmt_s(min(times))}, n={len(times)}): {figures['MB_per_s']:.1f} MB/s",
               figures)


# ---------------------------------------------------------------------------- phases

def syncs_made() -> int | None:
    """The archive's fsync-family calls so far, when bench/compare counts them
    (bench/sync_count.c, a counter file named by SYNC_COUNT_FILE); None otherwise."""
    path = os.environ.get("SYNC_COUNT_FILE")
    return int.from_bytes(Path(path).read_bytes()[:8], "little") if path else None


def bench_ingest(args: argparse.Namespace, data: DataSet, study: Study) -> list[Row]:
    flag = ts_flag(data, "-")
    runs = args.associations
    # Each run stores different studies, so every figure measures first-time stores and
    # the archive ends up holding the whole dataset exactly once.
    studies = sorted(data.studies.values(), key=lambda s: s.uid)
    disjoint = len(studies) >= len(runs)
    rows = []
    for k, n in enumerate(runs):
        files = [f for s in (studies[k::len(runs)] if disjoint else studies) for f in s.files]
        what = f"storescu x{n} association(s)" + ("" if disjoint or k == 0 else " (re-send)")
        rows.append(guarded("ingest", what, lambda: ingest_run(args, files, n, flag, what)))
    return rows


@contextlib.contextmanager
def scratch(args: argparse.Namespace, prefix: str) -> Iterator[str]:
    """A folder for a phase's files (symlinks for storescu, retrieved objects). Under
    `--scratch` it is kept: bench/compare deletes them all at its end, because on this
    machine's ext4 (no journal) each file created within ~35 s of thousands of deletions
    costs up to 0.5 ms more of kernel time, which would slow whichever archive ran next."""
    root = getattr(args, "scratch", None)
    if root is None:
        with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
            yield tmp
        return
    root.mkdir(parents=True, exist_ok=True)
    yield tempfile.mkdtemp(prefix=prefix, dir=root)


def ingest_run(args: argparse.Namespace, files: list[Path], n: int, flag: list[str], what: str) -> Row:
    n = max(1, min(n, len(files)))
    nbytes = sum(f.stat().st_size for f in files)
    with scratch(args, "bench-ingest-") as tmp:
        procs, logs = [], []
        # One folder of symlinks per association: no command-line length limit.
        for j in range(n):
            folder = Path(tmp, f"assoc{j}")
            folder.mkdir()
            for i, f in enumerate(files[j::n]):
                (folder / f"{i:07d}.dcm").symlink_to(f.resolve())
            logs.append(Path(tmp, f"assoc{j}.log"))
        syncs_before = syncs_made()
        t0 = time.perf_counter()
        try:
            for j in range(n):
                # -v: one log line per response, so a refused store can be reported.
                cmd = ["storescu", "-v", "-aet", args.calling_aet, "-aec", args.aet, *dcmtk_timeouts(args),
                       *flag, "+sd", "+r", args.host, str(args.port), str(Path(tmp, f"assoc{j}"))]
                with logs[j].open("wb") as log:  # the child keeps its own copy of the fd
                    procs.append(subprocess.Popen(cmd, env=DCMTK_ENV, stdout=log, stderr=subprocess.STDOUT))
            deadline = t0 + args.timeout
            rcs = wait_exact(procs, max(0.1, deadline - time.perf_counter()))
        except subprocess.TimeoutExpired:
            raise PhaseError(f"storescu timed out after {args.timeout} s") from None
        except FileNotFoundError:
            raise PhaseError("storescu not installed") from None
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
                    p.wait()
        elapsed = time.perf_counter() - t0
        failed = [(rc, log) for rc, log in zip(rcs, logs) if rc != 0]
        if failed:
            raise PhaseError(f"{len(failed)}/{n} storescu exit {failed[0][0]}: {last_error(failed[0][1])}")
    figures = {"associations": n, "instances": len(files), "bytes": nbytes, "seconds": elapsed,
               "instances_per_s": len(files) / elapsed, "MB_per_s": nbytes / elapsed / 1e6}
    if syncs_before is not None:  # bench/compare's sync_count shim is on the archive
        figures["syncs_per_instance"] = (syncs_made() - syncs_before) / len(files)
    syncs = f", {figures['syncs_per_instance']:.2f} syncs/inst" if "syncs_per_instance" in figures else ""
    return Row("ingest", what, f"{len(files)} inst, {nbytes / 1e6:.1f} MB in {elapsed:.2f} s: "
                               f"{figures['instances_per_s']:.1f} inst/s, {figures['MB_per_s']:.1f} MB/s{syncs}",
               figures)


def c_find(assoc: Any, identifier: Dataset) -> int:
    matches = 0
    for status, _ in assoc.send_c_find(identifier, StudyFind):
        code = getattr(status, "Status", None)
        if code is None:
            raise PhaseError("no C-FIND response (timeout or association aborted)")
        if code in (0xFF00, 0xFF01):
            matches += 1
        elif code == 0x0000:
            return matches
        else:
            raise PhaseError(f"C-FIND status 0x{code:04X}")
    raise PhaseError("C-FIND ended without a final status")


def bench_find(args: argparse.Namespace, data: DataSet, study: Study) -> list[Row]:
    ae = AE(ae_title=args.calling_aet)
    ae.add_requested_context(StudyFind)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = args.timeout
    try:  # pynetdicom reports a refused connection as "aborted"; tell them apart
        socket.create_connection((args.host, args.port), timeout=10).close()
    except OSError as e:
        raise PhaseError(f"cannot connect to {args.host}:{args.port}: {e.strerror or e}") from None
    t0 = time.perf_counter()
    assoc = ae.associate(args.host, args.port, ae_title=args.aet)
    setup = time.perf_counter() - t0
    if not assoc.is_established:
        if assoc.is_rejected:
            raise PhaseError("association rejected (called/calling AE title not accepted?)")
        if assoc.is_aborted:  # pynetdicom aborts when no presentation context is accepted
            raise PhaseError("association aborted (no Study Root C-FIND support?)")
        raise PhaseError("association failed")
    rows = [Row("find", "association setup (pynetdicom)", f"{setup * 1e3:.2f} ms", {"setup_ms": setup * 1e3})]
    try:
        sock = assoc.dul.socket.socket  # pynetdicom leaves Nagle on; see DCMTK_ENV
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for label, keys, expected in queries(data, study):
            identifier = Dataset()
            identifier.QueryRetrieveLevel = "STUDY"
            for kw in STUDY_KEYS:
                setattr(identifier, kw, keys.get(kw, ""))

            def one(identifier: Dataset = identifier, label: str = label, expected: int = expected) -> Row:
                times, matches = [], 0
                for k in range(args.repeat + 1):  # the first query is a warm-up
                    t = time.perf_counter()
                    matches = c_find(assoc, identifier)
                    if k:
                        times.append(time.perf_counter() - t)
                lat = latency(times)
                return Row("find", f"C-FIND {label}", fmt_latency(lat, matches, expected),
                           {**lat, "matches": matches, "dataset_matches": expected})

            rows.append(guarded("find", f"C-FIND {label}", one))
    finally:
        if assoc.is_established:
            assoc.release()
    return rows


def bench_qido(args: argparse.Namespace, data: DataSet, study: Study) -> list[Row]:
    rows = []
    with httpx.Client(timeout=args.timeout, headers=bearer(args.token)) as client:
        for label, params, expected in queries(data, study):
            def one(params: dict[str, str] = params, label: str = label, expected: int = expected) -> Row:
                times, matches = [], 0
                for k in range(args.repeat + 1):  # the first request is a warm-up
                    t = time.perf_counter()
                    r = client.get(f"{args.dicomweb}/studies", params=params,
                                   headers={"Accept": "application/dicom+json"})
                    body = r.content
                    if k:
                        times.append(time.perf_counter() - t)
                    if r.status_code not in (200, 204):
                        raise PhaseError(f"HTTP {r.status_code}: {body[:120]!r}")
                    matches = len(json.loads(body)) if body.strip() else 0
                lat = latency(times)
                return Row("qido", f"QIDO-RS {label}", fmt_latency(lat, matches, expected),
                           {**lat, "matches": matches, "dataset_matches": expected})

            rows.append(guarded("qido", f"QIDO-RS {label}", one))
    return rows


def bench_get(args: argparse.Namespace, data: DataSet, study: Study) -> list[Row]:
    flag = ts_flag(data, "+")
    times, got = [], (0, 0)
    with scratch(args, "bench-get-") as tmp:
        for k in range(args.retrieve_repeat):
            out = Path(tmp, f"run{k}")
            out.mkdir()
            cmd = ["getscu", "-aet", args.calling_aet, "-aec", args.aet, "-S", *flag,
                   *dcmtk_timeouts(args), "-k", "QueryRetrieveLevel=STUDY",
                   "-k", f"StudyInstanceUID={study.uid}", "-od", str(out), args.host, str(args.port)]
            times.append(run_tool(cmd, args.timeout, Path(tmp, "getscu.log")))
            got = count_files(out)
            if got[0] != len(study.files):
                break
    return [retrieval_row("get", "C-GET study (getscu)", times, got, study)]


class MoveReceiver:
    """C-STORE receiver on 127.0.0.1 only.

    DCMTK 3.6.7 storescp cannot bind to one address, so we listen ourselves and hand
    each accepted connection to `storescp --inetd` (one process per association).
    """

    def __init__(self, aet: str, port: int, out: Path) -> None:
        self.aet, self.out = aet, out
        self.procs: list[subprocess.Popen[bytes]] = []
        self.sock = socket.create_server(("127.0.0.1", port))
        self.sock.settimeout(0.2)  # bounded accept so the loop sees `stop`
        self.port = self.sock.getsockname()[1]
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            with conn:
                self.procs.append(subprocess.Popen(
                    ["storescp", "--inetd", "-aet", self.aet, "+xa", "-od", str(self.out)],
                    stdin=conn.fileno(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                    env=DCMTK_ENV))

    def wait_idle(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        for p in list(self.procs):
            p.wait(timeout=max(0.1, deadline - time.monotonic()))

    def __enter__(self) -> MoveReceiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=5)
        self.sock.close()
        for p in self.procs:
            if p.poll() is None:
                p.kill()
            p.wait()


def bench_move(args: argparse.Namespace, data: DataSet, study: Study) -> list[Row]:
    dest_aet, dest_port = args.move_dest
    times, got = [], (0, 0)
    with scratch(args, "bench-move-") as tmp:
        try:
            receiver = MoveReceiver(dest_aet, dest_port, Path(tmp))
        except OSError as e:
            raise PhaseError(f"cannot listen on 127.0.0.1:{dest_port}: {e.strerror}") from None
        with receiver:
            for k in range(args.retrieve_repeat):
                out = Path(tmp, f"run{k}")
                out.mkdir()
                receiver.out = out
                cmd = ["movescu", "-aet", args.calling_aet, "-aec", args.aet, "-aem", dest_aet,
                       "-S", *dcmtk_timeouts(args), "-k", "QueryRetrieveLevel=STUDY",
                       "-k", f"StudyInstanceUID={study.uid}", args.host, str(args.port)]
                times.append(run_tool(cmd, args.timeout, Path(tmp, "movescu.log")))
                receiver.wait_idle()  # the final C-MOVE-RSP follows the last C-STORE-RSP
                got = count_files(out)
                if got[0] != len(study.files):
                    break
    return [retrieval_row("move", f"C-MOVE study to {dest_aet}", times, got, study)]


def bench_wado(args: argparse.Namespace, data: DataSet, study: Study) -> list[Row]:
    base = f"{args.dicomweb}/studies/{study.uid}"
    rows = []
    with httpx.Client(timeout=args.timeout, headers=bearer(args.token)) as client:
        def study_rs() -> Row:
            times, parts, nbytes = [], 0, 0
            accept = list(WADO_ACCEPT)
            while len(times) < args.retrieve_repeat:
                t = time.perf_counter()
                r = client.get(base, headers={"Accept": accept[0]})
                body = r.content
                elapsed = time.perf_counter() - t
                if r.status_code in (400, 406) and len(accept) > 1:
                    accept.pop(0)  # archive rejects transfer-syntax=*; retry once without
                    continue
                if r.status_code != 200:
                    raise PhaseError(f"HTTP {r.status_code}: {body[:120]!r}")
                times.append(elapsed)
                parts, nbytes = count_parts(r.headers.get("content-type", ""), body), len(body)
            return retrieval_row("wado", "WADO-RS study (multipart)", times, (parts, nbytes), study)

        def metadata() -> Row:
            times, items = [], 0
            for _ in range(args.retrieve_repeat):
                t = time.perf_counter()
                r = client.get(f"{base}/metadata", headers={"Accept": "application/dicom+json"})
                body = r.content
                times.append(time.perf_counter() - t)
                if r.status_code != 200:
                    raise PhaseError(f"HTTP {r.status_code}: {body[:120]!r}")
                items = len(json.loads(body))
            if items != len(study.files):
                raise PhaseError(f"metadata for {items} of {len(study.files)} instances")
            med = statistics.median(times)
            return Row("wado", "WADO-RS study metadata", f"{items} inst in median {fmt_s(med)} "
                       f"(min {fmt_s(min(times))}, n={len(times)})",
                       {"instances": items, "median_s": med, "min_s": min(times), "runs": len(times)})

        rows.append(guarded("wado", "WADO-RS study (multipart)", study_rs))
        rows.append(guarded("wado", "WADO-RS study metadata", metadata))
    return rows


def count_parts(content_type: str, body: bytes) -> int:
    params = dict(p.strip().split("=", 1) for p in content_type.split(";")[1:] if "=" in p)
    boundary = params.get("boundary", "").strip('"')
    if not boundary:
        raise PhaseError(f"no multipart boundary in Content-Type {content_type!r}")
    return body.count(b"--" + boundary.encode()) - 1  # N openers + 1 closing delimiter


# ---------------------------------------------------------------------------- driver

def guarded(phase: str, what: str, fn: Callable[[], Row]) -> Row:
    try:
        return fn()
    except Exception as e:  # any failure is a result line, never a crash
        return Row(phase, what, f"failed: {reason(e)}", {"error": reason(e)})


def reason(e: Exception) -> str:
    return str(e) if isinstance(e, PhaseError) else f"{type(e).__name__}: {e}"


BENCHES: dict[str, Callable[[argparse.Namespace, DataSet, Study], list[Row]]] = {
    "ingest": bench_ingest, "find": bench_find, "qido": bench_qido,
    "get": bench_get, "move": bench_move, "wado": bench_wado,
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    def ints(v: str) -> list[int]:
        return [int(x) for x in v.split(",") if x]

    def move_dest(v: str) -> tuple[str, int]:
        aet, _, port = v.partition("=")
        if not aet or not port.isdigit():
            raise argparse.ArgumentTypeError("expected AE=port, e.g. BENCHMOVE=11113")
        return aet, int(port)

    def skips(v: str) -> list[str]:
        bad = [x for x in v.split(",") if x and x not in PHASES]
        if bad:
            raise argparse.ArgumentTypeError(f"unknown phase(s) {bad}; phases: {', '.join(PHASES)}")
        return [x for x in v.split(",") if x]

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=11112, help="archive DICOM port")
    p.add_argument("--aet", default="TWINPACS", help="archive (called) AE title")
    p.add_argument("--calling-aet", default="BENCHSCU", help="our AE title")
    p.add_argument("--dicomweb", default="http://127.0.0.1:8080/dicom-web", help="DICOMweb base URL")
    p.add_argument("--token", default=os.environ.get("TWINPACS_TOKEN") or None,
                   help="bearer token sent with every DICOMweb request (default: $TWINPACS_TOKEN; none: no header)")
    p.add_argument("--dataset", type=Path, required=True, help="folder of DICOM files (bench/generate.py)")
    p.add_argument("--associations", type=ints, default=[1, 4], help="ingest runs, e.g. 1,4")
    p.add_argument("--repeat", type=int, default=50, help="queries per C-FIND/QIDO measurement")
    p.add_argument("--retrieve-repeat", type=int, default=3, help="whole-study retrievals per method")
    p.add_argument("--study", help="StudyInstanceUID to retrieve (default: largest in dataset)")
    p.add_argument("--move-dest", type=move_dest, default=("BENCHMOVE", 11113),
                   help="C-MOVE destination AE=port the archive knows (default BENCHMOVE=11113)")
    p.add_argument("--skip", type=skips, action="extend", default=[], help="phases to skip, e.g. ingest,move")
    p.add_argument("--timeout", type=int, default=300, help="seconds per network operation / tool run")
    p.add_argument("--json", type=Path, help="also write results here")
    p.add_argument("--scratch", type=Path, help="keep the phases' temporary files under this folder "
                   "(the caller deletes it) instead of deleting them after each phase")
    p.add_argument("-v", "--verbose", action="store_true", help="show pynetdicom logging")
    a = p.parse_args(argv)
    if a.host not in ("127.0.0.1", "localhost"):
        p.error("benchmarks target an archive on this machine: use 127.0.0.1")
    a.dicomweb = a.dicomweb.rstrip("/")
    return a


def print_table(rows: list[Row]) -> None:
    w1 = max(len(r.phase) for r in rows)
    w2 = max(len(r.what) for r in rows)
    for r in rows:
        print(f"{r.phase:<{w1}}  {r.what:<{w2}}  {r.result}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.getLogger("pynetdicom").setLevel(logging.INFO if args.verbose else logging.CRITICAL)
    data = scan_dataset(args.dataset)
    study = target_study(data, args.study)
    syntaxes = ", ".join(f"{ts} x{n}" for ts, n in data.syntaxes.items())
    print(f"target   {args.aet}@{args.host}:{args.port}  {args.dicomweb}"
          f"{'  (bearer token sent)' if args.token else ''}  calling AE {args.calling_aet}")
    print(f"dataset  {len(data.files)} instances, {len(data.studies)} studies, "
          f"{data.nbytes / 1e6:.1f} MB ({syntaxes})")
    print(f"retrieve study {study.uid} ({len(study.files)} instances, {study.nbytes / 1e6:.1f} MB)")
    if "move" not in args.skip:
        print(f"C-MOVE destination {args.move_dest[0]} = 127.0.0.1:{args.move_dest[1]} "
              "(storescp started by this script; the archive must know this AE)")
    print(flush=True)
    rows: list[Row] = []
    for phase in PHASES:
        if phase in args.skip:
            rows.append(Row(phase, "-", "skipped"))
            continue
        try:
            rows.extend(BENCHES[phase](args, data, study))
        except Exception as e:  # a phase that cannot even start is still one line
            rows.append(Row(phase, "-", f"failed: {reason(e)}", {"error": reason(e)}))
    print_table(rows)
    if args.json:
        report = {"target": {"host": args.host, "port": args.port, "aet": args.aet,
                             "dicomweb": args.dicomweb, "move_dest": list(args.move_dest)},
                  "dataset": {"path": str(args.dataset), "instances": len(data.files),
                              "studies": len(data.studies), "bytes": data.nbytes,
                              "transfer_syntaxes": dict(data.syntaxes), "retrieve_study": study.uid},
                  "results": [asdict(r) for r in rows]}
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
