#!/usr/bin/env python3
"""Growth (issue 4): query latency, ingest rate and resident memory of one twinpacs site
as its index grows from 10,000 to 1,000,000 instances.

    .venv/bin/python bench/growth.py [--sizes 10000,1000000] [--repeat 50] [--ingest-studies 20]

The index is filled with rows inserted directly into SQLite (patients, studies, series,
instances, counters; made-up content hashes; no files in storage), as bench/audit.py does:
storing a million DICOM objects would take hours and queries read only the index. Unlike
audit.py's rows these look like a site's: two studies per patient, distinct accession
numbers, four studies a day going back in time (so a one-week range matches the same 28
studies at every size, as it would at a real site that has simply been running longer),
2 series x 25 instances per study. Filled data folders are cached under bench/out/ and
copied for each run (the ingest writes into the copy).

For every size (and an empty site for the ingest baseline) it starts
`twinpacs serve` on a copy, measures QIDO-RS (httpx, keep-alive) and C-FIND (pynetdicom,
one association, TCP_NODELAY) by PatientID, AccessionNumber and a one-week StudyDate range,
then a storescu ingest of real files from bench/generate.py's 256x256 dataset, and reads the
server's VmRSS / VmHWM from /proc. Loopback only; every server is stopped by its pid. Each
site gets a fresh bearer token and admits only BENCHSCU (store, find): compare.SiteAccess.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from pydicom import Dataset
from pynetdicom import AE
from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelFind as StudyFind  # type: ignore[attr-defined]

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/ scripts import each other
from compare import (
    CALLING_AET,
    HOST,
    READY,
    ROOT,
    START_TIMEOUT,
    BenchError,
    Server,
    SiteAccess,
    _die_with_parent,
    _pid_tree,
    check_loopback,
    log,
)
from run import STUDY_KEYS, c_find, ingest_run, latency

from twinpacs.app import build_site
from twinpacs.config import load_settings

OUT = ROOT / "bench" / "out"
AET = "TWINPACS"
PER_STUDY = 50
SERIES_PER_STUDY = 2
STUDIES_PER_DAY = 4
LAST_DAY = date(2026, 11, 27)  # study 0's date; study s is (s // STUDIES_PER_DAY) days earlier
# Query values present at every size >= 10,000 (200 studies): study 101 and the newest week.
QUERY_STUDY = 101
CT = "1.2.840.10008.5.1.4.1.1.2"
EXPLICIT_LE = "1.2.840.10008.1.2.1"


def study_date(s: int) -> str:
    return (LAST_DAY - timedelta(days=s // STUDIES_PER_DAY)).strftime("%Y%m%d")


def queries() -> list[tuple[str, dict[str, str], int]]:
    """(label, match keys, expected matching studies)."""
    week = f"{study_date(7 * STUDIES_PER_DAY - 1)}-{study_date(0)}"
    return [("PatientID", {"PatientID": f"P{QUERY_STUDY // 2:07d}"}, 2),
            ("AccessionNumber", {"AccessionNumber": f"A{QUERY_STUDY:08d}"}, 1),
            ("StudyDate week", {"StudyDate": week}, 7 * STUDIES_PER_DAY)]


# ---------------------------------------------------------------- index rows

def fill(index_file: Path, instances: int) -> None:
    """Direct rows in one transaction, counters consistent with them."""
    now = datetime.now(UTC).isoformat()
    n_studies = instances // PER_STUDY
    per_series = PER_STUDY // SERIES_PER_STUDY
    with closing(sqlite3.connect(index_file)) as conn, conn:  # closing: checkpoint the WAL at the end
        conn.execute("PRAGMA synchronous=OFF")
        conn.executemany(
            "INSERT INTO patients (id, PatientID, PatientName, PatientBirthDate, PatientSex, IssuerOfPatientID, "
            "num_studies, num_series, num_instances) VALUES (?, ?, ?, ?, ?, '', ?, ?, ?)",
            ((p + 1, f"P{p:07d}", f"Growth^Patient{p}", f"19{40 + p % 60:02d}0{1 + p % 9}15", "MF"[p % 2],
              n, n * SERIES_PER_STUDY, n * PER_STUDY)
             for p in range((n_studies + 1) // 2)
             for n in [min(2, n_studies - 2 * p)]))
        conn.executemany(
            "INSERT INTO studies (id, patient_pk, StudyInstanceUID, StudyDate, StudyTime, AccessionNumber, StudyID, "
            "StudyDescription, ReferringPhysicianName, num_series, num_instances) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            ((s + 1, s // 2 + 1, f"1.2.826.0.1.77.{s}", study_date(s), f"{8 + s % 10:02d}{s % 60:02d}00",
              f"A{s:08d}", str(s), "CT CHEST", "Ref^Doctor", SERIES_PER_STUDY, PER_STUDY)
             for s in range(n_studies)))
        conn.executemany(
            "INSERT INTO series (id, study_pk, SeriesInstanceUID, Modality, SeriesNumber, SeriesDescription, "
            "SeriesDate, BodyPartExamined, num_instances) VALUES (?, ?, ?, 'CT', ?, 'Axial', ?, 'CHEST', ?)",
            ((s * SERIES_PER_STUDY + r + 1, s + 1, f"1.2.826.0.1.77.{s}.{r}", str(r + 1), study_date(s), per_series)
             for s in range(n_studies) for r in range(SERIES_PER_STUDY)))

        def rows() -> Iterator[tuple[Any, ...]]:
            for s in range(n_studies):
                for r in range(SERIES_PER_STUDY):
                    for i in range(per_series):
                        uid = f"1.2.826.0.1.77.{s}.{r}.{i}"
                        yield (s * SERIES_PER_STUDY + r + 1, uid, CT, str(i + 1), "256", "256", EXPLICIT_LE,
                               hashlib.sha256(uid.encode()).hexdigest(), 132_000, now)
        conn.executemany(
            "INSERT INTO instances (series_pk, SOPInstanceUID, SOPClassUID, InstanceNumber, Rows, Columns, "
            "transfer_syntax, content_hash, size, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows())
        conn.execute("INSERT INTO counters (name, value) VALUES ('instances_stored', ?)", (n_studies * PER_STUDY,))


def cached_site(size: int) -> Path:
    """A migrated data folder with `size` instance rows, built once under bench/out/."""
    folder = OUT / f"growth-site-{size}"
    if (folder / "READY").exists():
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    t0 = time.perf_counter()
    build_site(load_settings(overrides={"site": {"data_dir": folder, "name": AET, "ae_title": AET}})).close()
    if size:
        fill(folder / "index.sqlite3", size)
    (folder / "READY").write_text(f"{size} instance rows\n")
    mb = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 1e6
    log(f"built {folder.name}: {size} instance rows (direct inserts, no files), {mb:.0f} MB, "
        f"{time.perf_counter() - t0:.1f} s")
    return folder


# ---------------------------------------------------------------- server

def start_site(data_dir: Path, log_file: Path, access: SiteAccess) -> Server:
    """`twinpacs serve` on data_dir with free loopback ports; ports read from its ready line."""
    # --accept-missing-history: the index was filled by direct inserts, never by a serving site.
    cmd = [str(ROOT / ".venv" / "bin" / "twinpacs"), "serve", "--data-dir", str(data_dir), "--ae-title", AET,
           "--role", "active", "--no-peers", "--database-url", f"sqlite:///{data_dir.resolve()}/index.sqlite3",
           "--accept-missing-history", "--bind", HOST, "--dicom-port", "0", "--http-port", "0",
           *access.serve_flags()]
    with log_file.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT,
                                preexec_fn=_die_with_parent)  # noqa: PLW1509 (no threads yet)
    server = Server("twinpacs", AET, 0, 0, proc, log_file, access)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not (found := READY.search(server.tail())):
            if proc.poll() is not None:
                raise BenchError(f"twinpacs exited with {proc.returncode}:\n{server.tail()}")
            if time.monotonic() > deadline:
                raise BenchError(f"twinpacs not ready within {START_TIMEOUT:.0f} s:\n{server.tail()}")
            time.sleep(0.1)
        server.dicom_port, server.http_port = int(found[1]), int(found[2])
        check_loopback("twinpacs", proc.pid)
    except BaseException:
        server.stop()
        raise
    return server


@contextmanager
def running(data_dir: Path, log_file: Path, access: SiteAccess) -> Iterator[Server]:
    server = start_site(data_dir, log_file, access)
    try:
        yield server
    finally:
        server.stop()


def memory_mb(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) in MB, summed over the server and any child processes."""
    rss = hwm = 0.0
    for p in _pid_tree(pid):
        try:
            with open(f"/proc/{p}/status") as f:
                fields = dict(line.split(":", 1) for line in f if ":" in line)
        except OSError:
            continue
        rss += int(fields.get("VmRSS", "0 kB").split()[0]) / 1024
        hwm += int(fields.get("VmHWM", "0 kB").split()[0]) / 1024
    return rss, hwm


# ---------------------------------------------------------------- measurements

def measure_queries(server: Server, repeat: int) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    with httpx.Client(timeout=60, trust_env=False, headers=server.headers) as client:
        for label, params, expected in queries():
            times, matches = [], 0
            for k in range(repeat + 1):  # the first request is a warm-up
                t = time.perf_counter()
                r = client.get(f"{server.dicomweb}/studies", params=params, headers={"Accept": "application/dicom+json"})
                body = r.content
                if k:
                    times.append(time.perf_counter() - t)
                r.raise_for_status()
                matches = len(r.json()) if body.strip() else 0
            out[f"QIDO-RS {label}"] = {**latency(times), "matches": matches, "expected": expected}
    ae = AE(ae_title=CALLING_AET)
    ae.add_requested_context(StudyFind)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 60
    assoc = ae.associate(HOST, server.dicom_port, ae_title=AET)
    if not assoc.is_established:
        raise BenchError("C-FIND association not established")
    try:
        sock = assoc.dul.socket.socket if assoc.dul.socket else None
        if sock is not None:  # pynetdicom leaves Nagle on
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for label, keys, expected in queries():
            identifier = Dataset()
            identifier.QueryRetrieveLevel = "STUDY"
            for kw in STUDY_KEYS:
                setattr(identifier, kw, keys.get(kw, ""))
            times, matches = [], 0
            for k in range(repeat + 1):
                t = time.perf_counter()
                matches = c_find(assoc, identifier)
                if k:
                    times.append(time.perf_counter() - t)
            out[f"C-FIND {label}"] = {**latency(times), "matches": matches, "expected": expected}
    finally:
        assoc.release()
    return out


def ingest_files(studies: int) -> list[Path]:
    """The first `studies` studies of the 256x256 CT dataset (generated if missing)."""
    ds = OUT / "ds-s40-x1-i50-256x256"
    if not ds.exists():
        subprocess.run([sys.executable, str(ROOT / "bench" / "generate.py"), "--out", str(ds), "--studies", "40",
                        "--series", "1", "--instances", "50"], check=True, timeout=1800)
    folders = sorted(p for p in ds.iterdir() if p.is_dir())[:studies]
    return sorted(f for d in folders for f in d.rglob("*.dcm"))


def measure_ingest(server: Server, files: list[Path], associations: int) -> float:
    args = argparse.Namespace(calling_aet=CALLING_AET, aet=AET, host=HOST, port=server.dicom_port, timeout=600)
    row = ingest_run(args, files, associations, [], "growth ingest")
    return float(row.figures["instances_per_s"])


def run_size(size: int, args: argparse.Namespace, files: list[Path]) -> dict[str, Any]:
    source = cached_site(size)
    work = OUT / f"growth-run-{size}"
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(source, work / "data")
    result: dict[str, Any] = {"size": size}
    try:
        with running(work / "data", work / "twinpacs.log", SiteAccess({CALLING_AET: "store,find"})) as server:
            pid = server.process.pid
            result["rss_start"] = memory_mb(pid)[0]
            if size:
                result["queries"] = measure_queries(server, args.repeat)
                result["rss_after_queries"], result["hwm_after_queries"] = memory_mb(pid)
            result["ingest"] = measure_ingest(server, files, args.associations)
            result["rss_after_ingest"], result["hwm_after_ingest"] = memory_mb(pid)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    log(f"size {size}: {result}")
    return result


def print_table(base: dict[str, Any], small: dict[str, Any], big: dict[str, Any]) -> None:
    s, b = small["size"], big["size"]
    rows: list[tuple[str, str, str, str, str, str]] = []
    for metric in small["queries"]:
        for stat in ("median_ms", "p95_ms"):
            x, y = small["queries"][metric][stat], big["queries"][metric][stat]
            m = f"{metric} {stat[:-3]} (ms)"
            target = "<= 2.0" if stat == "median_ms" else "(p95: none)"
            rows.append((m, f"{x:.2f}", f"{y:.2f}", f"{y / x:.2f}", target,
                         ("yes" if y / x <= 2.0 else "NO") if stat == "median_ms" else ""))
    e = base["ingest"]
    rows.append((f"ingest inst/s (empty site: {e:.0f})", f"{small['ingest']:.0f}", f"{big['ingest']:.0f}",
                 f"{big['ingest'] / e:.2f}", ">= 0.8 x empty", "yes" if big["ingest"] / e >= 0.8 else "NO"))
    for key, label in (("rss_after_queries", "VmRSS after queries (MB)"), ("rss_after_ingest", "VmRSS after ingest (MB)"),
                       ("hwm_after_ingest", "VmHWM peak (MB)")):
        x, y = small[key], big[key]
        rows.append((label, f"{x:.0f}", f"{y:.0f}", f"{y / x:.2f}", "< 1024 MB at 1M", "yes" if y < 1024 else "NO"))
    header = ("metric", f"at {s:,}", f"at {b:,}", "ratio", "target", "met")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(6)]
    for r in [header, *rows]:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)))
    print("matches per query (expected): " + ", ".join(
        f"{m}={big['queries'][m]['matches']}({big['queries'][m]['expected']})" for m in big["queries"]))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="10000,1000000", help="index sizes in instances (first and last are compared)")
    p.add_argument("--repeat", type=int, default=50, help="timed queries per query (after one warm-up)")
    p.add_argument("--ingest-studies", type=int, default=20, help="studies of 50 instances stored by storescu")
    p.add_argument("--associations", type=int, default=1, help="storescu associations for the ingest")
    p.add_argument("--keep", action="store_true", help="keep the run folders under bench/out/")
    args = p.parse_args()
    sizes = [int(x) for x in args.sizes.split(",") if x]
    OUT.mkdir(parents=True, exist_ok=True)
    files = ingest_files(args.ingest_studies)
    log(f"ingest set: {len(files)} instances, {sum(f.stat().st_size for f in files) / 1e6:.0f} MB, "
        f"{args.associations} association(s)")
    results = {n: run_size(n, args, files) for n in [0, *sizes]}
    print_table(results[0], results[sizes[0]], results[sizes[-1]])


if __name__ == "__main__":
    main()
