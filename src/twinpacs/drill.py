"""Drills: rehearse the incident on a private pair of sites, step by step, so staff can
practise before a real change. Nothing here touches a production site: the pair runs in a
temporary folder on free loopback ports."""

from __future__ import annotations

import signal
import socket
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from .pair import LocalPair, PairSite

out = Console()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Drill:
    def __init__(self, root: Path, pause: bool) -> None:
        a = PairSite("A", "active", "DRILL_A", _free_port(), _free_port())
        b = PairSite("B", "standby", "DRILL_B", _free_port(), _free_port())
        self.pair = LocalPair(root, a, b)
        self.pause = pause
        self.number = 0

    def step(self, title: str, explanation: str) -> None:
        self.number += 1
        out.rule(f"[bold]Step {self.number}: {title}")
        out.print(explanation, highlight=False)
        if self.pause:
            out.input("[dim]press Enter to continue[/dim] ")

    def sync(self, site: PairSite) -> dict[str, Any]:
        status = self.pair.api(site, "GET", "/api/sync")
        table = Table("peer", "held here", "confirmed there", "pending", "failed", "percent", "last error")
        for p in status["peers"]:
            table.add_row(p["name"], str(p["held"]), str(p["confirmed"]), str(p["pending"]), str(p["failed"]),
                          p["percent"], p["last_error"][:60])
        out.print(table)
        return status

    def start_in_sync(self, seed: int, patient_prefix: str) -> None:
        """Both sites up, two studies stored at A and confirmed at B, the counts shown."""
        a, b = self.pair.a, self.pair.b
        self.pair.start(a, quiet=True)
        self.pair.start(b, quiet=True)
        self.pair.load_studies(a, 2, seed=seed, patient_prefix=patient_prefix)
        self.wait_in_sync(a)
        self.sync(a)

    def wait_in_sync(self, site: PairSite, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while not self.pair.api(site, "GET", "/api/sync")["in_sync"]:
            if time.monotonic() > deadline:
                raise SystemExit("drill: replication did not catch up in time")
            time.sleep(0.5)

    def wait_for_error(self, site: PairSite, timeout: float = 30) -> None:
        """Until the worker has tried once and recorded why it failed, so there is something to see."""
        deadline = time.monotonic() + timeout
        while not any(p["last_error"] for p in self.pair.api(site, "GET", "/api/sync")["peers"]):
            if time.monotonic() > deadline:
                return
            time.sleep(0.2)

    def failover(self, source: PairSite, target: PairSite) -> dict[str, Any]:
        result = self.pair.api(source, "POST", "/api/failover/run",
                               json={"to": target.name, "actor": "drill", "reason": "drill"})
        roles = [self.pair.api(s, "GET", "/api/roles") for s in (self.pair.a, self.pair.b)]
        out.print(" ".join(f"{r['site']}: {r['role']}" for r in roles), highlight=False)
        return result


def failover_drill(drill: Drill) -> None:
    pair, a, b = drill.pair, drill.pair.a, drill.pair.b
    drill.step("Two sites", "Site A is active and takes the studies; site B is the second data centre "
               "on standby. Every object stored at A is queued for B in the same transaction.")
    drill.start_in_sync(seed=1, patient_prefix="MORN")
    drill.step("Replication is held back", "The link to B goes down (here: B is stopped). A keeps taking "
               "studies: two emergency studies arrive at A and cannot reach B.")
    pair.stop(b)
    sent = pair.load_studies(a, 2, seed=7, patient_prefix="EMERG")
    drill.step("Is B complete?", f"The administrator asks before the planned failover. twinpacs answers "
               f"with exact counts: {sent} objects are pending, and the percentage is below 100.")
    drill.sync(a)
    drill.step("The gate refuses", "A planned failover to B is refused, with the exact list of studies B lacks.")
    plan = pair.api(a, "GET", "/api/failover/plan", params={"to": "B"})
    out.print(f"ready: {plan['ready']}", style="bold red" if not plan["ready"] else "bold green")
    for study in plan["missing_studies"]:
        out.print(f"  {study['PatientID']} {study['PatientName']} {study['StudyDate']} "
                  f"accession {study['AccessionNumber']}: {study['instances_missing']} instances", highlight=False)
    drill.step("Clinicians are told", "A notice goes up on every page, in the API and to the webhooks.")
    notice = pair.api(a, "POST", "/api/notices", json={
        "severity": "warning", "title": "Replication to site B is behind",
        "body": "Do not switch to B; new studies are not there yet.", "posted_by": "drill"})
    out.print(f"notice {notice['id']}: {notice['title']}", highlight=False)
    drill.step("Release", "The link is back (B restarts). The queue drains by itself until B confirms "
               "every object by content hash.")
    pair.start(b, quiet=True)
    drill.wait_in_sync(a)
    drill.sync(a)
    pair.api(a, "POST", f"/api/notices/{notice['id']}/clear", json={"cleared_by": "drill"})
    drill.step("A clean switch", "The gate now says ready; the failover stops stores at A, drains, switches roles.")
    drill.failover(a, b)
    drill.step("And back", "B is active and replicates to A; the same gate guards the way back.")
    drill.wait_in_sync(b)
    drill.failover(b, a)
    out.print("Drill complete: A is active again, B is standby, nothing was lost.", style="bold green")


def downtime_drill(drill: Drill) -> None:
    pair, a, b = drill.pair, drill.pair.a, drill.pair.b
    drill.step("Two sites in sync", "A is active, B standby, both hold the same studies.")
    drill.start_in_sync(seed=3, patient_prefix="DAY")
    drill.step("B goes away", "Site B fails without warning (its process is killed). A keeps working; "
               "what it stores waits in the queue, with the reason visible.")
    process = pair.processes.pop(b.name)
    process.send_signal(signal.SIGKILL)
    process.wait()
    pair.load_studies(a, 1, seed=9, patient_prefix="LATE")
    drill.wait_for_error(a)
    drill.sync(a)
    notice = pair.api(a, "POST", "/api/notices", json={
        "severity": "critical", "title": "Site B is down", "body": "Images are served by A only.",
        "posted_by": "drill"})
    drill.step("B comes back", "B restarts; the queue resumes by itself and nothing is lost.")
    pair.start(b, quiet=True)
    drill.wait_in_sync(a)
    drill.sync(a)
    pair.api(a, "POST", f"/api/notices/{notice['id']}/clear", json={"cleared_by": "drill"})
    out.print("Drill complete: B caught up; the notice is cleared.", style="bold green")


DRILLS: dict[str, Callable[[Drill], None]] = {"failover": failover_drill, "downtime": downtime_drill}


def run_drill(name: str, pause: bool) -> None:
    with tempfile.TemporaryDirectory(prefix="twinpacs-drill-") as folder:
        drill = Drill(Path(folder), pause)
        try:
            DRILLS[name](drill)
        finally:
            drill.pair.stop_all()
