"""The fingerprint of every start (G7): the effective configuration (secrets masked) and the
environment it runs in, recorded before the listeners open, compared with the previous start
and shown loudly when they differ. The comparison (`diff`) is one pure function, shared by
the start, `twinpacs config diff` and the admin API.

A site whose index holds objects but no start at all has lost its last-known configuration
(or predates this record): it refuses to start rather than assume that nothing changed."""

from __future__ import annotations

import getpass
import hashlib
import json
import logging
import platform
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from importlib import metadata
from typing import TYPE_CHECKING, Any

from . import __version__
from .config import masked
from .core.access_trail import AccessEntry
from .core.archive import utcnow
from .core.principal import Principal
from .errors import ConfigurationError
from .index.config_starts import ConfigStart, SqlConfigStarts

if TYPE_CHECKING:
    from .app import Site

log = logging.getLogger("twinpacs")

LIBRARIES = ("pydicom", "pynetdicom", "sqlalchemy", "alembic", "starlette", "uvicorn", "psycopg")
NOTICE_TITLE = "configuration changed since the last start"

Entries = Mapping[str, Mapping[str, Any]]  # dotted key -> {"value", "explicit", ...}


# -- what a start records ------------------------------------------------------------------

def environment(site: Site) -> dict[str, Any]:
    """Software versions, OS, database engine and storage path, as flat dotted keys."""
    engine, version = SqlConfigStarts(site.index.db).engine()
    env: dict[str, Any] = {"twinpacs": __version__, "python": platform.python_version()}
    for name in LIBRARIES:
        try:
            env[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            env[name] = None
    env.update({
        "os": platform.platform(),
        "host": platform.node(),
        "database.engine": engine,
        "database.version": version,
        "database.url": masked("database.url", site.settings.database_url),
        "storage.path": str((site.settings.site.data_dir / "store").resolve()),
    })
    return env


def fingerprint(settings: Entries, env: Mapping[str, Any]) -> str:
    """sha256 over the settings' values and explicitness, and the environment."""
    canonical = json.dumps(
        {"settings": {k: [v["value"], bool(v["explicit"])] for k, v in settings.items()}, "environment": env},
        sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


# -- the comparison ------------------------------------------------------------------------

@dataclass(frozen=True)
class Change:
    key: str
    kind: str  # "added", "removed", "changed", "now explicit", "now default"
    old: Any = None
    new: Any = None
    old_explicit: bool | None = None  # None for environment keys, and for a side without the key
    new_explicit: bool | None = None

    def describe(self) -> str:
        """One line, e.g. "dicom.port 11112 -> 104 (explicit)"."""
        old, new = _show(self.old), _show(self.new)
        if self.kind == "added":
            return f"{self.key} added: {new}{_how(self.new_explicit)}"
        if self.kind == "removed":
            return f"{self.key} removed (was {old}{_how(self.old_explicit, bare=True)})"
        if self.kind == "now explicit":
            return f"{self.key} {new} now explicit (was the default)"
        if self.kind == "now default":
            return f"{self.key} {new} now the default (was explicit)"
        if self.old_explicit is not None and self.old_explicit != self.new_explicit:
            how = f" ({'explicit' if self.old_explicit else 'default'} -> " \
                  f"{'explicit' if self.new_explicit else 'default'})"
        else:
            how = _how(self.new_explicit)
        return f"{self.key} {old} -> {new}{how}"

    def as_dict(self) -> dict[str, Any]:
        return {"key": self.key, "kind": self.kind, "old": self.old, "new": self.new,
                "old_explicit": self.old_explicit, "new_explicit": self.new_explicit}


def _show(value: Any) -> str:
    return json.dumps(value, default=str) if not isinstance(value, (int, float)) or isinstance(value, bool) \
        else str(value)


def _how(explicit: bool | None, bare: bool = False) -> str:
    if explicit is None:
        return ""
    word = "explicit" if explicit else "default"
    return f", {word}" if bare else f" ({word})"


@dataclass(frozen=True)
class ConfigDiff:
    settings: list[Change] = field(default_factory=list)
    environment: list[Change] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.settings and not self.environment

    def counts(self) -> dict[str, int]:
        kinds = ("added", "removed", "changed", "now explicit", "now default")
        return {**{k: sum(c.kind == k for c in self.settings) for k in kinds}, "environment": len(self.environment)}

    def as_dict(self) -> dict[str, Any]:
        return {"settings": [c.as_dict() for c in self.settings],
                "environment": [c.as_dict() for c in self.environment], "counts": self.counts()}


def diff(old: Entries, new: Entries, old_env: Mapping[str, Any] | None = None,
         new_env: Mapping[str, Any] | None = None) -> ConfigDiff:
    """What changed from `old` to `new` (dotted key -> {"value", "explicit"}): keys added and
    removed, values changed, and values that stayed but moved between default and explicit
    (a setting that silently fell back to its default is the incident this guards against).
    Environments are compared when both are given."""
    changes: list[Change] = []
    for key in sorted(old.keys() | new.keys()):
        before, after = old.get(key), new.get(key)
        if before is None and after is not None:
            changes.append(Change(key, "added", new=after["value"], new_explicit=bool(after["explicit"])))
        elif after is None and before is not None:
            changes.append(Change(key, "removed", old=before["value"], old_explicit=bool(before["explicit"])))
        elif before is not None and after is not None:
            was, now = bool(before["explicit"]), bool(after["explicit"])
            if before["value"] != after["value"]:
                changes.append(Change(key, "changed", before["value"], after["value"], was, now))
            elif was != now:
                changes.append(Change(key, "now explicit" if now else "now default",
                                      before["value"], after["value"], was, now))
    env_changes: list[Change] = []
    if old_env is not None and new_env is not None:
        for key in sorted(old_env.keys() | new_env.keys()):
            if old_env.get(key) != new_env.get(key):
                kind = "added" if key not in old_env else "removed" if key not in new_env else "changed"
                env_changes.append(Change(key, kind, old_env.get(key), new_env.get(key)))
    return ConfigDiff(changes, env_changes)


def diff_starts(old: ConfigStart, new: ConfigStart) -> ConfigDiff:
    return diff(old.settings, new.settings, old.environment, new.environment)


def history_rows(starts: list[ConfigStart]) -> list[dict[str, Any]]:
    """Each start (oldest first) with the number of keys changed since the one before it."""
    rows = []
    for before, start in zip([None, *starts], starts):
        changes = diff_starts(before, start) if before else None
        rows.append({"id": start.id, "started_at": start.started_at.isoformat(), "fingerprint": start.fingerprint,
                     "twinpacs": start.environment.get("twinpacs"), "source": start.source,
                     "changed_settings": len(changes.settings) if changes else None,
                     "changed_environment": len(changes.environment) if changes else None})
    return rows


# -- the start -----------------------------------------------------------------------------

@dataclass(frozen=True)
class StartRecord:
    start: ConfigStart
    previous: ConfigStart | None
    changes: ConfigDiff | None  # None at the first start

    def as_dict(self) -> dict[str, Any]:
        return {"start": self.start.as_dict(), "previous_start_id": self.previous.id if self.previous else None,
                "changed_since_previous_start": self.changes.as_dict() if self.changes else None}


def missing_history_message(url: str) -> str:
    return (
        f"the index {masked('database.url', url)} holds stored objects but no record of any previous "
        "start: the last-known configuration is missing, so what changed since cannot be shown. Check that "
        "database.url and site.data_dir name this site's database and folder. If this database comes from a "
        "twinpacs version without configuration history, start once with `twinpacs serve ... --accept-missing-history`; that start is logged "
        "and recorded in the operator log.")


def record_start(site: Site, accept_missing_history: bool = False,
                 now: Callable[[], datetime] = utcnow) -> StartRecord:
    """Record this start's fingerprint; compare with the previous start and announce changes.
    Raises ConfigurationError when the history is missing but the index holds objects."""
    store = SqlConfigStarts(site.index.db)
    latest = store.latest(1)
    previous = latest[0] if latest else None
    if previous is None and store.history_missing():
        if not accept_missing_history:
            raise ConfigurationError(missing_history_message(site.settings.database_url))
        log.warning("configuration history missing on an index that holds objects: accepted "
                    "(--accept-missing-history); this start becomes the first recorded one")
        _operator_log(site, "config.accept-missing-history",
                      "started with --accept-missing-history on an index holding objects without start history")
    entries = site.settings.effective()
    env = environment(site)
    config_file = site.settings.config_file
    start = store.add(now(), fingerprint(entries, env), entries, env, str(config_file.resolve()) if config_file else "")
    if previous is None:
        log.info("configuration history: first start recorded (#%d, fingerprint %s)", start.id, start.fingerprint[:12])
        return StartRecord(start, None, None)
    changes = diff_starts(previous, start)
    if changes.empty:
        log.info("configuration unchanged since the last start (#%d, fingerprint %s)", start.id, start.fingerprint[:12])
    else:
        announce(site, changes, previous, start)
        _draft_incident(site, changes, previous, start)
        _trail(site, changes, previous, start)
    return StartRecord(start, previous, changes)


def announce(site: Site, changes: ConfigDiff, previous: ConfigStart, start: ConfigStart) -> None:
    """One WARNING line per changed key, and a notice (banner, API, webhooks)."""
    for change in changes.settings:
        log.warning("configuration changed since last start: %s", change.describe())
    for change in changes.environment:
        log.warning("environment changed since last start: %s", change.describe())
    body = "\n".join(
        [f"Start #{start.id} differs from start #{previous.id} ({previous.started_at:%Y-%m-%d %H:%M} UTC):"]
        + [f"- {c.describe()}" for c in changes.settings]
        + [f"- environment: {c.describe()}" for c in changes.environment]
        + ["Check each change was intended: `twinpacs config diff`, GET /api/config."])
    try:
        from .announcements import Announcements  # here: it pulls in the HTTP clients

        Announcements.from_site(site).notices.post("warning", NOTICE_TITLE, body, posted_by="twinpacs")
    except Exception as exc:  # the log lines above stand; a notice that fails must not stop the start
        log.error("could not post the configuration-change notice: %s", exc)


def _draft_incident(site: Site, changes: ConfigDiff, previous: ConfigStart, start: ConfigStart) -> None:
    """A setting removed or changed is drafted as an incident (one open at a time)."""
    try:
        from .incident_watch import draft_config_change

        draft_config_change(site, [c.as_dict() for c in changes.settings], start.id, previous.id)
    except Exception as exc:  # as with the notice: the log lines stand, the start goes on
        log.error("could not draft the configuration-change incident: %s", exc)


def _trail(site: Site, changes: ConfigDiff, previous: ConfigStart, start: ConfigStart) -> None:
    """One access trail entry per changed start, by the OS user who started it (rare: committed at once)."""
    keys = [c.key for c in changes.settings] + [f"environment {c.key}" for c in changes.environment]
    site.access_trail.record_now(AccessEntry(
        Principal(getpass.getuser(), "operator", "local"), "configuration", "success", "cli",
        detail=f"start #{start.id} differs from start #{previous.id}: {', '.join(keys)}"))


def _operator_log(site: Site, action: str, reason: str) -> None:
    from .announcements import Announcements

    try:
        actor = getpass.getuser()
    except (KeyError, OSError):
        actor = "unknown"
    Announcements.from_site(site).operator_log.record(actor, action, reason, {"site": site.name})
