"""Core store throughput without any network: Archive.store on files already in memory.

    .venv/bin/python bench/store_core.py DATASET_DIR [--count 300]

Separates the archive's own per-object cost from the DIMSE/HTTP doors."""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from twinpacs.app import build_site
from twinpacs.config import load_settings
from twinpacs.core.parsing import parse_part10


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("dataset", type=Path)
    parser.add_argument("--count", type=int, default=300)
    args = parser.parse_args()
    datas = [p.read_bytes() for p in sorted(args.dataset.rglob("*.dcm"))[: args.count]]
    started = time.perf_counter()
    for data in datas:
        parse_part10(data)
    parse_s = time.perf_counter() - started
    with tempfile.TemporaryDirectory() as folder:
        site = build_site(load_settings(None, {"site": {"data_dir": folder}}))
        started = time.perf_counter()
        for data in datas:
            site.archive.store(data, "bench")
        store_s = time.perf_counter() - started
        started = time.perf_counter()
        for data in datas:
            site.archive.store(data, "bench")
        again_s = time.perf_counter() - started
        site.close()
    n = len(datas)
    print(f"{n} objects, {sum(map(len, datas)) / n / 1000:.0f} kB each")
    print(f"parse+validate only   {parse_s / n * 1000:6.2f} ms/object")
    print(f"store (first time)    {store_s / n * 1000:6.2f} ms/object  {n / store_s:7.1f} objects/s")
    print(f"store again (dup)     {again_s / n * 1000:6.2f} ms/object  {n / again_s:7.1f} objects/s")


if __name__ == "__main__":
    main()
