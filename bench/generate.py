#!/usr/bin/env python3
"""Write a deterministic synthetic benchmark dataset (one sub-folder per study).

Default: 10 CT studies x 2 series x 50 instances of 256x256 16-bit pixels, about
132 kB per instance (~132 MB). Same arguments => byte-identical files.

    .venv/bin/python bench/generate.py --out bench/out/ds --studies 10
"""

from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from pydicom.uid import UID

from twinpacs.synthetic import StudySpec, available_transfer_syntaxes, make_studies, write_study


def _parse_ts(value: str) -> UID:
    """Accept a UID or a pydicom keyword such as JPEG2000Lossless."""
    for ts in available_transfer_syntaxes():
        if value in (str(ts), ts.keyword):
            return ts
    names = ", ".join(ts.keyword for ts in available_transfer_syntaxes())
    raise argparse.ArgumentTypeError(f"unknown or unavailable transfer syntax {value!r}: {names}")


def _write_one(job: tuple[StudySpec, Path]) -> int:
    spec, folder = job
    return sum(p.stat().st_size for p in write_study(spec, folder))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, required=True, help="output folder (created)")
    p.add_argument("--studies", type=int, default=10)
    p.add_argument("--series", type=int, default=2, help="series per study")
    p.add_argument("--instances", type=int, default=50, help="instances per series")
    p.add_argument("--rows", type=int, default=256)
    p.add_argument("--cols", type=int, default=256)
    p.add_argument("--modality", default="CT", help="CT, MR, CR or anything (Secondary Capture)")
    p.add_argument("--ts", type=_parse_ts, default=UID("1.2.840.10008.1.2.1"),
                   help="transfer syntax keyword or UID (default ExplicitVRLittleEndian)")
    p.add_argument("--seed", type=int, default=1000, help="first study's seed")
    p.add_argument("--patient-prefix", default="BENCH", help="patient IDs are PREFIX-00000, ...")
    p.add_argument("--jobs", type=int, default=None, help="worker processes (default: CPUs)")
    a = p.parse_args(argv)

    base = StudySpec(patient_id=a.patient_prefix, modality=a.modality, series=a.series,
                     instances_per_series=a.instances, rows=a.rows, columns=a.cols,
                     seed=a.seed, study_description=f"Benchmark {a.modality}",
                     transfer_syntax=a.ts)
    specs = make_studies(a.studies, base)
    jobs = [(spec, a.out / f"study-{k:05d}") for k, spec in enumerate(specs)]
    t0 = time.perf_counter()
    with ProcessPoolExecutor(max_workers=a.jobs) as pool:
        total = sum(pool.map(_write_one, jobs))
    n = a.studies * a.series * a.instances
    print(f"wrote {n} instances in {a.studies} studies, {total / 1e6:.1f} MB "
          f"({a.ts.name}) to {a.out} in {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
