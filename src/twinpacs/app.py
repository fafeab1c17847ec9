"""The composition root: builds backends and services from Settings. No logic lives here."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from .config import Settings
from .core.archive import Archive, utcnow
from .core.event_watch import RetrievalLog
from .core.replication import Policy, Replication
from .core.ris import Code, Ris
from .core.ris_sync import RisSync
from .core.roles import Roles
from .incident_watch import IncidentWatch
from .index.access_trail import SqlAccessTrail
from .index.outbox import SqlOutbox
from .index.ris import SqlRis
from .index.ris_sync import SqlRisSync
from .index.sql import SqlIndex
from .storage.filesystem import FilesystemBlobStore

if TYPE_CHECKING:
    from .dimse.reports import CommitmentReports


class BackgroundService(Protocol):
    """Something a serving site runs beside its listeners (the replication worker...)."""

    def start(self) -> None: ...
    def stop(self) -> None: ...


@dataclass
class Site:
    settings: Settings
    archive: Archive
    index: SqlIndex
    roles: Roles
    ris: Ris
    # Every access to patient data (issue 9); record() never raises and never waits for a commit.
    access_trail: SqlAccessTrail
    background: list[BackgroundService] = field(default_factory=list)
    replication: Replication | None = None  # None when no peer is configured
    ris_sync: RisSync | None = None  # orders, RIS patients, corrections to twinpacs peers; None without one
    # Storage Commitment reports from DIMSE peers; the DICOM listener takes those sent to it.
    commitment_reports: CommitmentReports | None = None
    # The DICOM listener's port once it listens (0 before, or when not serving DIMSE).
    dicom_port: int = 0
    # Slow and failed retrievals, noted by the retrieval paths for the incident watcher.
    retrievals: RetrievalLog | None = None

    @property
    def outbox(self) -> SqlOutbox:
        return SqlOutbox(self.index.db)

    @property
    def name(self) -> str:
        return self.settings.site_name

    @property
    def ae_title(self) -> str:
        return self.settings.site.ae_title

    def close(self) -> None:
        self.access_trail.close()  # commits the entries still queued
        self.index.close()


def build_site(settings: Settings) -> Site:
    data_dir = settings.site.data_dir
    data_dir.mkdir(parents=True, exist_ok=True)
    index = SqlIndex(settings.database_url)
    archive = Archive(
        FilesystemBlobStore(data_dir / "store"),
        index,
        conflict_policy=settings.storage.conflict_policy,
        peers=[peer.name for peer in settings.peers],
        site_name=settings.site_name,
    )
    roles = Roles(index, archive, settings.site_name, settings.site.role, [p.name for p in settings.peers])
    ris = Ris(SqlRis(index.db), {local: Code(c.code, c.scheme, c.meaning)
                                 for local, c in settings.ris.procedure_codes.items()}, utcnow)
    trail = SqlAccessTrail(index.db, settings.site_name, utcnow)
    site = Site(settings, archive, index, roles, ris, trail,
                retrievals=RetrievalLog(settings.incidents.retrieval_latency_ms, utcnow))
    # A STAT order's images already waiting for a peer move to the head of the queue.
    ris.on_order.append(site.outbox.prioritise_order)
    if settings.peers:
        # Imported here: peer.py uses the dimse and web packages, whose modules import Site.
        from .dimse.reports import CommitmentReports
        from .peer import make_client

        r = settings.replication
        site.commitment_reports = CommitmentReports()
        clients = [make_client(p, settings.site_name, settings.dicom, settings.site.ae_title, site.commitment_reports)
                   for p in settings.peers]
        policy = Policy(r.batch_size, r.retry_initial_s, r.retry_max_s, r.give_up_after)
        site.replication = Replication(site.outbox, archive.blobs, clients, policy)
        archive.on_change.append(site.replication.wake)
        site.background.append(site.replication)
        # The RIS state (orders, RIS patients, study corrections) goes to twinpacs peers only:
        # a DIMSE peer is another archive. Woken by every order; other changes within a second.
        twinpacs = [p for p in settings.peers if p.kind == "twinpacs"]
        if twinpacs:
            from .peer_ris import HttpRisPeer  # imports peer.py: imported here for the same reason

            site.ris_sync = RisSync(SqlRisSync(index.db, settings.site_name),
                                    [HttpRisPeer(p, settings.site_name) for p in twinpacs], policy)
            ris.on_order.append(site.ris_sync.wake)
            site.background.append(site.ris_sync)
    if settings.prefetch.sources:
        from .prefetch_worker import build_worker  # imported here for the same reason as peer.py

        worker = build_worker(site)
        ris.on_order.append(worker.order_changed)
        site.background.append(worker)
    site.background.append(IncidentWatch(site))  # drafts incidents from the archive's own events
    return site
