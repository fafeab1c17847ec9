"""The fuzzers of tests/fuzz for as long as you like: one site (DIMSE, HL7 and HTTP on
127.0.0.1, small limits, a temporary folder), each door fed hypothesis-generated hostile input
in turn, the invariants checked after every input (no 5xx, no partial object, the door still
answers a valid request). Prints inputs tried and failures per door; exits 1 on any failure.

    .venv/bin/python bench/fuzz.py --minutes 3
    .venv/bin/python bench/fuzz.py --minutes 30 --doors pdu,hl7 --seed 7

A failure is shrunk by hypothesis to a small input, printed with the broken invariant."""

from __future__ import annotations

import argparse
import itertools
import logging
import sys
import tempfile
import time
import traceback
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests/fuzz holds the fuzzers

from hypothesis import HealthCheck, given, seed, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from tests.fuzz import doors  # noqa: E402

CHUNK = 25  # examples per hypothesis run; a door's runs repeat with new seeds until its time is up


def door_runs(site: doors.FuzzSite) -> dict[str, tuple[st.SearchStrategy[Any], Callable[[Any], None]]]:
    numbers = itertools.count(1)

    def cstore(dataset: bytes) -> None:
        site.send_cstore(dataset)
        site.check_echo()

    def pdata(pdu: bytes) -> None:
        site.send_pdata(pdu)
        site.check_echo()

    def pdu(data: bytes) -> None:
        site.send_pdu(data)
        site.check_echo()

    def hl7(data: bytes) -> None:
        site.send_hl7(data)
        site.check_hl7()

    return {
        "stow": (doors.stow_inputs(), lambda body: site.send_stow(*body)),
        "cstore": (doors.dicom_inputs().map(doors.dataset_bytes), cstore),
        "pdata": (doors.pdata_inputs(), pdata),
        "pdu": (doors.pdu_inputs(), pdu),
        "hl7": (doors.hl7_inputs(), hl7),
        "pages": (doors.page_payloads(), lambda payload: site.send_page_text(payload, next(numbers))),
    }


def run_door(strategy: st.SearchStrategy[Any], send: Callable[[Any], None], run_seed: int) -> str | None:
    """One hypothesis run of CHUNK examples; the failure (shrunk) as text, or None."""

    @seed(run_seed)
    @settings(max_examples=CHUNK, deadline=None, database=None, suppress_health_check=list(HealthCheck),
              print_blob=False)
    @given(strategy)
    def fuzz(value: Any) -> None:
        send(value)

    try:
        fuzz()
    except Exception as exc:  # an invariant broken, or the door crashed the client
        notes = "\n".join(getattr(exc, "__notes__", []))
        return f"{type(exc).__name__}: {exc}\n{notes}\n{''.join(traceback.format_exception(exc)[-3:])}"
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=3.0, help="total run time, shared by the doors")
    parser.add_argument("--doors", default="stow,cstore,pdata,pdu,hl7,pages", help="comma-separated subset")
    parser.add_argument("--seed", type=int, default=int(time.time()), help="first hypothesis seed")
    parser.add_argument("-v", "--verbose", action="store_true", help="show the site's log (refusals, warnings)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING if args.verbose else logging.CRITICAL)
    logging.getLogger("pydicom").setLevel(logging.WARNING if args.verbose else logging.CRITICAL)
    warnings.simplefilter("ignore")  # pydicom warns about every invalid value it is fed
    chosen = [d.strip() for d in args.doors.split(",") if d.strip()]

    with tempfile.TemporaryDirectory(prefix="twinpacs-fuzz-") as folder:
        site = doors.FuzzSite(Path(folder))
        try:
            runs = door_runs(site)
            unknown = set(chosen) - set(runs)
            if unknown:
                parser.error(f"unknown door(s) {sorted(unknown)}; known: {', '.join(runs)}")
            failures: dict[str, list[str]] = {door: [] for door in chosen}
            tried: dict[str, int] = {}
            budget = args.minutes * 60 / len(chosen)
            print(f"fuzzing {', '.join(chosen)} for {args.minutes:g} min ({budget:.0f} s each), seed {args.seed}")
            run_seed = args.seed
            for door in chosen:
                strategy, send = runs[door]
                deadline = time.monotonic() + budget
                tried_before = site.tried.get(door, 0)
                while time.monotonic() < deadline:
                    failure = run_door(strategy, send, run_seed)
                    run_seed += 1
                    if failure:
                        failures[door].append(failure)
                        print(f"\n[{door}] FAILURE (seed {run_seed - 1}):\n{failure}")
                tried[door] = site.tried.get(door, 0) - tried_before  # the pages door also stores and sends HL7
                print(f"  {door:7} {tried[door]:7d} inputs  {len(failures[door])} failures")
            final = []
            for check in (site.check_echo, site.check_http, site.check_hl7, site.check_store):
                try:
                    check()
                except AssertionError as exc:
                    final.append(f"{check.__name__}: {exc}")
        finally:
            site.close()
    print("\n| door | inputs tried | failures |\n|---|---:|---:|")
    for door in chosen:
        print(f"| {door} | {tried[door]} | {len(failures[door])} |")
    print(f"| **all** | {sum(tried.values())} | {sum(map(len, failures.values()))} |")
    print("after the run: " + ("; ".join(final) if final else "every door answers, store and index agree"))
    return 1 if final or any(failures.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
