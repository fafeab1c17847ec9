#!/usr/bin/env python3
"""Retrieval while ingesting (issue 4, G3) and resident memory through an ingest.

    .venv/bin/python bench/during_ingest.py [--instances 10000] [--idle 100] [--associations 2]

Starts an empty twinpacs site (loopback, free ports), stores one 50-instance study with
storescu, times `--idle` whole-study WADO-RS requests (httpx keep-alive, body read, parts
counted), then starts a full-speed storescu ingest of `--instances` other 256x256 CT
instances on `--associations` associations and times the same WADO-RS request back to back
until the ingest ends. A thread samples the server's VmRSS every 0.5 s from start to end.
The ingest set is generated once by bench/generate.py under bench/out/ (own seed and patient
prefix, so no instance is a re-send of the retrieved study). Client and server share the
machine's cores, as in bench/compare. The site gets a fresh bearer token and admits only
BENCHSCU, to store (compare.SiteAccess).
"""

from __future__ import annotations

import argparse
import math
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from pydicom import dcmread

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/ scripts import each other
from compare import CALLING_AET, HOST, BenchError, Server, SiteAccess
from growth import AET, OUT, ROOT, ingest_files, memory_mb, running
from run import WADO_ACCEPT, count_parts, ingest_run

MAX_DURING = 20_000  # bound on WADO-RS requests during the ingest
INGEST_TIMEOUT = 1800.0  # seconds


def p99(times: list[float]) -> float:
    ordered = sorted(times)
    return ordered[max(0, math.ceil(0.99 * len(ordered)) - 1)]  # nearest rank


def ingest_set(instances: int) -> list[Path]:
    studies = max(1, instances // 50)
    ds = OUT / f"ds-during-s{studies}-x1-i50-256x256"
    if not ds.exists():
        subprocess.run([sys.executable, str(ROOT / "bench" / "generate.py"), "--out", str(ds), "--studies",
                        str(studies), "--series", "1", "--instances", "50", "--seed", "50000",
                        "--patient-prefix", "DURING"], check=True, timeout=3600)
    return sorted(ds.rglob("*.dcm"))


def wado_once(client: httpx.Client, url: str, expected: int) -> float:
    t = time.perf_counter()
    r = client.get(url, headers={"Accept": WADO_ACCEPT[0]})
    body = r.content
    elapsed = time.perf_counter() - t
    if r.status_code != 200:
        raise BenchError(f"WADO-RS HTTP {r.status_code}: {body[:120]!r}")
    parts = count_parts(r.headers.get("content-type", ""), body)
    if parts != expected:
        raise BenchError(f"WADO-RS returned {parts} of {expected} instances")
    return elapsed


class RssSampler(threading.Thread):
    """VmRSS of the server (and children) every 0.5 s until stopped."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.stop = pid, threading.Event()
        self.samples: list[tuple[float, float]] = []  # (seconds since start, MB)

    def run(self) -> None:
        t0 = time.monotonic()
        while not self.stop.wait(0.5):
            self.samples.append((time.monotonic() - t0, memory_mb(self.pid)[0]))


def measure(server: Server, args: argparse.Namespace, study: list[Path], files: list[Path]) -> dict[str, Any]:
    scu = argparse.Namespace(calling_aet=CALLING_AET, aet=AET, host=HOST, port=server.dicom_port,
                             timeout=INGEST_TIMEOUT)
    ingest_run(scu, study, 1, [], "retrieved study")
    uid = dcmread(study[0], stop_before_pixels=True).StudyInstanceUID
    url = f"{server.dicomweb}/studies/{uid}"
    res: dict[str, Any] = {}
    with httpx.Client(timeout=60, trust_env=False, headers=server.headers) as client:
        wado_once(client, url, len(study))  # warm-up
        res["idle"] = [wado_once(client, url, len(study)) for _ in range(args.idle)]
        res["rss_before_ingest"] = memory_mb(server.process.pid)[0]
        box: dict[str, Any] = {}

        def ingest() -> None:
            try:
                box["row"] = ingest_run(scu, files, args.associations, [], "full-speed ingest")
            except Exception as e:  # noqa: BLE001 (reported below)
                box["error"] = e

        worker = threading.Thread(target=ingest, daemon=True)
        worker.start()
        time.sleep(1.0)  # let storescu start and associations open: measure at full speed
        during: list[float] = []
        while worker.is_alive() and len(during) < MAX_DURING:
            elapsed = wado_once(client, url, len(study))
            if worker.is_alive():  # count only requests that ended while the ingest was still running
                during.append(elapsed)
        worker.join(INGEST_TIMEOUT)
        if "error" in box:
            raise BenchError(f"ingest failed: {box['error']}")
        if not during:
            raise BenchError(f"the ingest of {len(files)} instances ended before a WADO-RS request could be timed "
                             "during it: give more --instances")
        res["during"], res["ingest"] = during, box["row"].figures
    return res


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--instances", type=int, default=10_000, help="ingested instances (multiple of 50)")
    p.add_argument("--idle", type=int, default=100, help="idle WADO-RS requests")
    p.add_argument("--associations", type=int, default=2)
    args = p.parse_args()
    study = ingest_files(1)  # study 1 of bench/out/ds-s40-x1-i50-256x256
    files = ingest_set(args.instances)
    work = OUT / "during-ingest-run"
    shutil.rmtree(work, ignore_errors=True)
    (work / "data").mkdir(parents=True)
    try:
        with running(work / "data", work / "twinpacs.log", SiteAccess({CALLING_AET: "store"})) as server:
            sampler = RssSampler(server.process.pid)
            sampler.start()
            try:
                res = measure(server, args, study, files)
            finally:
                sampler.stop.set()
                sampler.join(5)
            hwm = memory_mb(server.process.pid)[1]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    idle, during, ing = res["idle"], res["during"], res["ingest"]
    peak = max(r for _, r in sampler.samples)
    print(f"ingest: {ing['instances']} instances, {ing['bytes'] / 1e6:.0f} MB on {ing['associations']} associations "
          f"in {ing['seconds']:.1f} s = {ing['instances_per_s']:.0f} inst/s (with WADO-RS load); "
          f"WADO-RS study: {len(study)} instances, n idle={len(idle)}, n during={len(during)}")
    rows = [("WADO-RS study median (ms)", statistics.median(idle) * 1e3, statistics.median(during) * 1e3, None),
            ("WADO-RS study p99 (ms)", p99(idle) * 1e3, p99(during) * 1e3, 1.5)]
    print(f"{'metric':28} {'idle':>9} {'ingest':>9} {'ratio':>6}  target  met")
    for label, a, b, target in rows:
        met = "" if target is None else ("yes" if b / a <= target else "NO")
        print(f"{label:28} {a:9.1f} {b:9.1f} {b / a:6.2f}  {'<= ' + str(target) if target else '':6}  {met}")
    print(f"{'VmRSS peak, 0.5 s samples':28} {res['rss_before_ingest']:9.0f} {peak:9.0f} {'':6}  < 500 MB  "
          f"{'yes' if peak < 500 else 'NO'}   (VmHWM {hwm:.0f} MB; {len(sampler.samples)} samples)")


if __name__ == "__main__":
    try:
        main()
    except BenchError as e:
        sys.exit(f"bench/during_ingest.py: {e}")
