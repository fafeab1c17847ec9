"""Audit of two large twinpacs sites (G5): time to confirm identical, time to find one difference.

    .venv/bin/python bench/audit.py [--instances 1000000] [--per-study 50]

The two SQLite indexes are filled with index rows inserted directly (patients, studies,
series, instances with made-up content hashes), not by storing files: storing a million
DICOM objects would take hours and the audit reads only the index. Both sites are served
by in-process apps over real HTTP on 127.0.0.1, and audited through the same client the CLI
uses, with a fresh bearer token of role service that both sites accept (compare.SiteAccess)."""

from __future__ import annotations

import argparse
import hashlib
import shutil
import sqlite3
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

import httpx
import uvicorn

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/ scripts import each other
from compare import SiteAccess

from twinpacs.app import build_site
from twinpacs.audit_clients import HttpDigestSource
from twinpacs.config import load_settings
from twinpacs.core.audit import AuditLevel, AuditReport, audit
from twinpacs.web import create_app

SERIES_PER_STUDY = 2


def fill(index_file: Path, instances: int, per_study: int) -> None:
    """Direct rows: one patient per study, SERIES_PER_STUDY series, `per_study` instances."""
    now = datetime.now(timezone.utc).isoformat()
    per_series = per_study // SERIES_PER_STUDY
    with sqlite3.connect(index_file) as conn:
        conn.execute("PRAGMA synchronous=OFF")
        for s in range(instances // per_study):
            pk = s + 1
            conn.execute("INSERT INTO patients (id, PatientID, PatientName, IssuerOfPatientID) VALUES (?, ?, ?, '')",
                         (pk, f"P{s:07d}", f"Bench^Patient{s}"))
            conn.execute("INSERT INTO studies (id, patient_pk, StudyInstanceUID, StudyDate, AccessionNumber) "
                         "VALUES (?, ?, ?, ?, ?)", (pk, pk, f"1.2.826.0.1.99.{s}", "20260101", f"A{s:07d}"))
            rows = []
            for r in range(SERIES_PER_STUDY):
                series_pk = s * SERIES_PER_STUDY + r + 1
                conn.execute("INSERT INTO series (id, study_pk, SeriesInstanceUID, Modality) VALUES (?, ?, ?, 'CT')",
                             (series_pk, pk, f"1.2.826.0.1.99.{s}.{r}"))
                for i in range(per_series):
                    uid = f"1.2.826.0.1.99.{s}.{r}.{i}"
                    rows.append((series_pk, uid, "1.2.840.10008.5.1.4.1.1.2", "1.2.840.10008.1.2.1",
                                 hashlib.sha256(uid.encode()).hexdigest(), 132_000, now))
            conn.executemany("INSERT INTO instances (series_pk, SOPInstanceUID, SOPClassUID, transfer_syntax, "
                             "content_hash, size, received_at) VALUES (?, ?, ?, ?, ?, ?, ?)", rows)


@contextmanager
def served(data_dir: Path, name: str, access: SiteAccess) -> Iterator[str]:
    site = build_site(load_settings(overrides={"site": {"data_dir": data_dir, "name": name}, **access.settings()}))
    server = uvicorn.Server(uvicorn.Config(create_app(site), host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)
        site.close()


def timed_audit(client: httpx.Client, a: str, b: str) -> tuple[float, AuditReport]:
    started = time.perf_counter()
    report = audit(HttpDigestSource(client, a), HttpDigestSource(client, b))
    return time.perf_counter() - started, report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--instances", type=int, default=1_000_000)
    parser.add_argument("--per-study", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="twinpacs-bench-audit-") as folder:
        root = Path(folder)
        build_site(load_settings(overrides={"site": {"data_dir": root / "A", "name": "A"}})).close()  # migrate
        started = time.perf_counter()
        fill(root / "A" / "index.sqlite3", args.instances, args.per_study)
        shutil.copytree(root / "A", root / "B")
        print(f"filled two indexes with {args.instances} instance rows each (direct inserts, no files) "
              f"in {time.perf_counter() - started:.1f} s")
        access = SiteAccess()  # HTTP only: the audit reads the peer route /api/audit/digest
        with served(root / "A", "A", access) as a, served(root / "B", "B", access) as b, \
                httpx.Client(timeout=600, headers=access.headers) as client:
            seconds, report = timed_audit(client, a, b)
            print(f"identical: confirmed in {seconds:.2f} s ({report.requests} digest request per side), "
                  f"identical={report.identical}")
            victim = f"1.2.826.0.1.99.{args.instances // args.per_study // 2}.1.7"
            with sqlite3.connect(root / "B" / "index.sqlite3") as conn:
                conn.execute("DELETE FROM instances WHERE SOPInstanceUID = ?", (victim,))
            seconds, report = timed_audit(client, a, b)
            found = [d.key for d in report.at(AuditLevel.INSTANCE)]
            print(f"one instance deleted at B: found in {seconds:.2f} s with {report.requests} digest requests "
                  f"per side; instances listed: {found} (expected [{victim!r}])")


if __name__ == "__main__":
    main()
