"""The one typed configuration object. Each key is declared once, with its type, default and
help: here, or in the section modules it imports (config_ris.py, config_access.py); nothing
reads configuration anywhere else.

Precedence: command-line flags > environment (TWINPACS_SECTION__KEY) > TOML file > defaults.
Each loaded Settings remembers which layer gave each key, so that `config check` can mark
defaults, a start can record what was explicit, and `serve` can insist on REQUIRED_TO_SERVE.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from ipaddress import ip_address
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from .config_access import LimitSettings, SecuritySettings
from .config_base import Section, check_ae_title, parse_host_port
from .config_ris import Hl7Settings, PrefetchSettings, PrefetchSourceSettings, RisSettings  # noqa: F401 (PrefetchSourceSettings re-exported)
from .config_source import env_var_for, flatten_raw, key_lines, line_of, provenance
from .errors import ConfigurationError


class SiteSettings(Section):
    name: str = Field("", description="Stable identifier of this site; defaults to the AE title. Never derived from hardware.")
    role: Literal["active", "standby"] = Field(
        "active", description="Role at first start; afterwards the role a failover set is kept in the index."
    )
    ae_title: str = Field("TWINPACS", description="The DICOM Application Entity title this site answers to.")
    data_dir: Path = Field(description="Folder holding the object store and, by default, the SQLite index.")

    @field_validator("ae_title")
    @classmethod
    def _ae(cls, v: str) -> str:
        return check_ae_title(v)


DicomRight = Literal["store", "find", "get", "move"]
DICOM_RIGHTS: tuple[DicomRight, ...] = ("store", "find", "get", "move")


class AllowedAe(Section):
    """What one calling AE may do at the DICOM door; C-ECHO is open to every admitted AE."""

    rights: list[DicomRight] = Field(
        default_factory=lambda: list(DICOM_RIGHTS),
        description="Services this AE may use: store (C-STORE, Storage Commitment), find (C-FIND, worklist), "
        "get (C-GET), move (C-MOVE).",
    )
    host: str = Field("", description="IP address its associations must come from; empty: any address.")
    move_to: list[str] = Field(
        default_factory=list,
        description="C-MOVE destinations (AE titles of move_destinations) it may move to; empty: any of them.",
    )

    @field_validator("host")
    @classmethod
    def _host(cls, v: str) -> str:
        if v.strip():
            try:
                return str(ip_address(v.strip()))
            except ValueError:
                raise ValueError(f"{v!r} is not an IP address") from None
        return ""

    @field_validator("move_to")
    @classmethod
    def _move_to(cls, v: list[str]) -> list[str]:
        return [check_ae_title(ae) for ae in v]


class DicomSettings(Section):
    bind: str = Field("127.0.0.1", description="Address the DICOM listener binds to.")
    port: int = Field(11112, ge=0, le=65535, description="DICOM (DIMSE) port; 0 picks a free one.")
    move_destinations: dict[str, str] = Field(
        default_factory=dict,
        description="C-MOVE destinations: AE title = \"host:port\". A move to any other AE is refused.",
    )
    max_associations: int = Field(32, ge=1, description="Concurrent DICOM associations accepted.")
    accept_unknown_ae: bool = Field(
        False, description="Let any calling AE store, query and retrieve (logged as a warning at every start); "
        "AEs listed in allowed_aes keep their own limits.",
    )
    allowed_aes: dict[str, AllowedAe] = Field(
        default_factory=dict,
        description="Calling AE titles admitted, each with its rights; any other AE is rejected at association.",
    )
    tls_cert_file: Path | None = Field(
        None, description="PEM certificate (chain) of this site: set with tls_key_file, the DICOM port is TLS only.")
    tls_key_file: Path | None = Field(None, description="PEM private key of tls_cert_file.")
    tls_ca_file: Path | None = Field(None, description="PEM file of the CAs whose client certificates are trusted.")
    tls_require_client_cert: bool = Field(
        False, description="Refuse a TLS connection without a client certificate issued by tls_ca_file.")
    tls_destinations: list[str] = Field(
        default_factory=list, description="AE titles of move_destinations reached with DICOM TLS (C-MOVE "
        "sub-associations, Storage Commitment reports); this site shows tls_cert_file when asked for a certificate.",
    )
    tls_remote_ca_file: Path | None = Field(
        None, description="PEM file of the CAs trusted for the certificates of the DICOM nodes this site "
        "connects to with TLS (tls_destinations, DIMSE peers and prefetch sources with tls); empty: the system's CAs.",
    )

    @field_validator("move_destinations")
    @classmethod
    def _destinations(cls, v: dict[str, str]) -> dict[str, str]:
        for ae, address in v.items():
            check_ae_title(ae)
            parse_host_port(address)
        return {check_ae_title(ae): address for ae, address in v.items()}

    @field_validator("allowed_aes")
    @classmethod
    def _allowed(cls, v: dict[str, AllowedAe]) -> dict[str, AllowedAe]:
        return {check_ae_title(ae): rights for ae, rights in v.items()}

    @field_validator("tls_destinations")
    @classmethod
    def _tls_destinations(cls, v: list[str]) -> list[str]:
        return [check_ae_title(ae) for ae in v]

    @model_validator(mode="after")
    def _consistent(self) -> DicomSettings:
        unknown = [ae for ae in self.tls_destinations if ae not in self.move_destinations]
        if unknown:
            raise ValueError(f"tls_destinations names {', '.join(unknown)}, not in move_destinations "
                             f"({', '.join(self.move_destinations) or 'none configured'})")
        for ae, allowed in self.allowed_aes.items():
            unknown = [d for d in allowed.move_to if d not in self.move_destinations]
            if unknown:
                raise ValueError(f"allowed_aes.{ae}.move_to names {', '.join(unknown)}, not in move_destinations "
                                 f"({', '.join(self.move_destinations) or 'none configured'})")
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("tls_cert_file and tls_key_file go together: give both or neither")
        if self.tls_cert_file is None and (self.tls_ca_file or self.tls_require_client_cert):
            raise ValueError("tls_ca_file and tls_require_client_cert need tls_cert_file and tls_key_file")
        if self.tls_require_client_cert and self.tls_ca_file is None:
            raise ValueError("tls_require_client_cert needs tls_ca_file (the CAs that issue client certificates)")
        return self


class HttpSettings(Section):
    bind: str = Field("127.0.0.1", description="Address the HTTP server (DICOMweb, API) binds to.")
    port: int = Field(8080, ge=0, le=65535, description="HTTP port; 0 picks a free one.")
    tls_cert_file: Path | None = Field(
        None, description="PEM certificate (chain) of the HTTP server; with tls_key_file the site serves HTTPS only.")
    tls_key_file: Path | None = Field(None, description="PEM private key of tls_cert_file.")

    @model_validator(mode="after")
    def _tls_pair(self) -> HttpSettings:
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("tls_cert_file and tls_key_file go together: give both for HTTPS, or neither")
        return self

    @property
    def scheme(self) -> str:
        return "https" if self.tls_cert_file else "http"


class DatabaseSettings(Section):
    url: str = Field("", description="SQLAlchemy URL of the index; empty means SQLite in data_dir.")


class StorageSettings(Section):
    conflict_policy: Literal["keep-first", "newer-wins"] = Field(
        "keep-first",
        description="Same SOP Instance UID, different content: which version is current. "
        "The other is always kept as a conflicting version.",
    )


class PeerSettings(Section):
    name: str = Field(description="The peer's site name (a twinpacs peer: its [site] name).")
    kind: Literal["twinpacs", "dimse"] = Field(
        "twinpacs", description="twinpacs: STOW-RS and hash confirmation; dimse: any archive over C-STORE."
    )
    dicomweb_url: str = Field("", description="DICOMweb base URL, e.g. http://127.0.0.1:8081/dicom-web.")
    api_url: str = Field("", description="twinpacs peers: base URL of its HTTP server; derived from dicomweb_url if empty.")
    ae_title: str = Field("", description="DIMSE peers: AE title.")
    host: str = Field("127.0.0.1", description="DIMSE peers: host.")
    port: int = Field(0, ge=0, le=65535, description="DIMSE peers: port.")
    storage_commitment: bool = Field(
        False, description="DIMSE peers: confirm through Storage Commitment (else objects stay 'sent, not verified')."
    )
    tls: bool = Field(
        False, description="DIMSE peers: connect with DICOM TLS (dicom.tls_remote_ca_file, dicom.tls_cert_file); "
        "a twinpacs peer uses HTTPS through an https:// dicomweb_url instead.",
    )
    token: SecretStr = Field(
        SecretStr(""), description="twinpacs peers: the API token this site sends to the peer (Authorization: "
        "Bearer); the peer lists it in its security.api_tokens with role service.",
    )

    @field_validator("ae_title")
    @classmethod
    def _ae(cls, v: str) -> str:
        return check_ae_title(v) if v else v

    @property
    def base_url(self) -> str:
        if self.api_url:
            return self.api_url.rstrip("/")
        return self.dicomweb_url.rstrip("/").removesuffix("/dicom-web")


class ReplicationSettings(Section):
    batch_size: int = Field(20, ge=1, le=1000, description="Objects per STOW-RS request to a peer.")
    retry_initial_s: float = Field(1.0, gt=0, description="First retry delay after a failed send; doubles each time.")
    retry_max_s: float = Field(300.0, gt=0, description="Longest delay between two retries.")
    give_up_after: int = Field(
        20, ge=1, description="Attempts after which an object is marked failed (visible, retried only on request)."
    )
    commitment_waits_for_peer: bool = Field(
        False, description="Storage Commitment to modalities succeeds only once every peer confirmed the object."
    )
    commitment_wait_s: float = Field(
        600.0, gt=0, description="With commitment_waits_for_peer: how long a commitment report waits for the "
        "peers' confirmation before reporting the unconfirmed objects as failed.",
    )


class NoticeSettings(Section):
    webhooks: list[str] = Field(default_factory=list, description="URLs that receive every notice as JSON (POST).")


class OnCallContact(Section):
    name: str = Field(description="Who is on call (a person or a rota).")
    role: str = Field("", description="e.g. PACS administrator, clinical engineer.")
    phone: str = Field("", description="Phone or pager.")
    email: str = Field("", description="E-mail address.")


class IncidentSettings(Section):
    sync_gap_objects: int = Field(
        1, ge=1, description="A peer lacking at least this many objects for longer than sync_gap_s drafts an incident.")
    sync_gap_s: float = Field(600.0, ge=0, description="How long the sync gap must last before an incident is drafted.")
    retrieval_latency_ms: float = Field(
        5000.0, gt=0, description="A retrieval (WADO-RS) slower than this drafts an incident.")
    replication_failures: int = Field(
        5, ge=1, description="Objects a peer failed to take (given up, or pending after this many failed "
        "attempts) before an incident is drafted.")
    escalation_webhooks: list[str] = Field(
        default_factory=list, description="URLs that receive escalated incident drafts as JSON (POST), "
        "with the on-call contacts.")
    on_call: list[OnCallContact] = Field(default_factory=list, description="Sent with every escalation.")
    escalate_from: Literal["info", "warning", "critical"] = Field(
        "critical", description="Drafts of this severity or above are escalated at once; "
        "a forced failover always is.")
    watch_interval_s: float = Field(5.0, gt=0, description="How often the archive's events are checked.")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="TWINPACS_", env_nested_delimiter="__", extra="forbid"
    )

    site: SiteSettings = Field(description="This site: its name, role, AE title and data folder.")
    dicom: DicomSettings = Field(default_factory=DicomSettings, description="The DICOM (DIMSE) listener.")  # type: ignore[arg-type]
    http: HttpSettings = Field(default_factory=HttpSettings, description="The HTTP server: DICOMweb and the API.")  # type: ignore[arg-type]
    database: DatabaseSettings = Field(default_factory=DatabaseSettings, description="The index database.")  # type: ignore[arg-type]
    storage: StorageSettings = Field(default_factory=StorageSettings, description="The object store.")  # type: ignore[arg-type]
    peers: list[PeerSettings] = Field(
        default_factory=list, description="Archives this site replicates to; an empty list is a single site."
    )
    replication: ReplicationSettings = Field(default_factory=ReplicationSettings, description="Sending to peers.")  # type: ignore[arg-type]
    notices: NoticeSettings = Field(default_factory=NoticeSettings, description="Downtime notices.")  # type: ignore[arg-type]
    hl7: Hl7Settings = Field(default_factory=Hl7Settings, description="The HL7 v2 (MLLP) listener for the RIS.")  # type: ignore[arg-type]
    ris: RisSettings = Field(default_factory=RisSettings, description="Orders: HL7 field mapping, procedure codes.")  # type: ignore[arg-type]
    prefetch: PrefetchSettings = Field(default_factory=PrefetchSettings, description="Prefetching of priors.")  # type: ignore[arg-type]
    incidents: IncidentSettings = Field(  # type: ignore[arg-type]
        default_factory=IncidentSettings, description="Incident drafts from the archive's own events; escalation.")
    security: SecuritySettings = Field(  # type: ignore[arg-type]
        default_factory=SecuritySettings, description="Accounts, roles and tokens of the HTTP door.")
    limits: LimitSettings = Field(  # type: ignore[arg-type]
        default_factory=LimitSettings, description="Size, count and time limits per request.")

    # Which layer gave each dotted key ("flag", "env", "file"); absent keys are defaults.
    _sources: dict[str, str] = PrivateAttr(default_factory=dict)
    _file: Path | None = PrivateAttr(default=None)

    @field_validator("peers")
    @classmethod
    def _peers(cls, peers: list[PeerSettings]) -> list[PeerSettings]:
        names = [p.name for p in peers]
        if len(set(names)) != len(names):
            raise ValueError("peer names must be unique")
        for peer in peers:
            if peer.kind == "twinpacs" and not peer.base_url:
                raise ValueError(f"peer {peer.name}: a twinpacs peer needs dicomweb_url or api_url")
            if peer.kind == "dimse" and not (peer.ae_title and peer.port):
                raise ValueError(f"peer {peer.name}: a DIMSE peer needs ae_title and port")
            if peer.kind == "twinpacs" and peer.tls:
                raise ValueError(f"peer {peer.name}: tls is for DIMSE peers; a twinpacs peer uses HTTPS "
                                 "through an https:// dicomweb_url")
        return peers

    @property
    def site_name(self) -> str:
        return self.site.name or self.site.ae_title

    @property
    def database_url(self) -> str:
        return self.database.url or f"sqlite:///{self.site.data_dir / 'index.sqlite3'}"

    @property
    def config_file(self) -> Path | None:
        """The TOML file these settings were read from, if any."""
        return self._file

    def source_of(self, key: str) -> str:
        """"flag", "env", "file" or "default" for a dotted key such as "dicom.port"."""
        return self._sources.get(key, "default")

    def _explicit_under(self, key: str) -> bool:
        return any(k == key or k.startswith((key + ".", key + "[")) for k in self._sources)

    def effective(self) -> dict[str, dict[str, Any]]:
        """Every setting as a dotted key → {"value", "explicit", "source"}, secrets masked.
        A list of tables is numbered (peers[0].name); an empty one is the single key "peers"."""
        flat, _ = flatten_raw(self.model_dump(mode="json"))
        return {key: {"value": masked(key, value), "explicit": self.source_of(key) != "default",
                      "source": self.source_of(key)} for key, value in flat.items()}




# -- loading --------------------------------------------------------------------------------

def load_settings(config_file: Path | None = None, overrides: dict[str, Any] | None = None,
                  environment: bool = True) -> Settings:
    """Build Settings from an optional TOML file, the environment (unless `environment` is
    False) and flag overrides (a nested dict such as {"dicom": {"port": 104}}). Raises
    ConfigurationError naming each wrong key with its file and line, or its variable."""
    text, from_file = _read_toml(config_file)
    try:
        from_env = EnvSettingsSource(Settings)() if environment else {}
    except SettingsError as exc:  # e.g. TWINPACS_PEERS holding JSON that does not parse
        raise ConfigurationError(f"invalid configuration in the environment: {exc}") from None
    from_flags = overrides or {}

    class _Layered(Settings):
        @classmethod
        def settings_customise_sources(
            cls,
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            return (init_settings, InitSettingsSource(settings_cls, from_env),
                    InitSettingsSource(settings_cls, from_file))

    try:
        loaded = _Layered(**from_flags)
    except ValidationError as exc:
        layers = [("flag", from_flags), ("env", from_env), ("file", from_file)]
        problems = [_locate(err, layers, config_file, text) for err in exc.errors()]
        where = f" in {config_file}" if config_file else ""
        raise ConfigurationError(f"invalid configuration{where}:\n  " + "\n  ".join(problems)) from None
    settings = Settings.model_validate(loaded.model_dump())
    settings._sources = provenance([("flag", from_flags), ("env", from_env), ("file", from_file)])
    settings._file = config_file
    return settings


def _read_toml(config_file: Path | None) -> tuple[str, dict[str, Any]]:
    if config_file is None:
        return "", {}
    if not config_file.is_file():
        raise ConfigurationError(f"configuration file {config_file} does not exist")
    try:
        text = config_file.read_text(encoding="utf-8")
        return text, tomllib.loads(text)
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"cannot read configuration {config_file}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        found = re.search(r"at line (\d+)", str(exc))
        where = f"{config_file}:{found[1]}" if found else str(config_file)
        raise ConfigurationError(f"{where}: TOML syntax error: {exc}") from None


def dotted(loc: tuple[str | int, ...]) -> str:
    """("peers", 0, "name") → "peers[0].name"."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _locate(err: Any, layers: list[tuple[str, Mapping[str, Any]]], config_file: Path | None, text: str) -> str:
    """One validation error as "where: key: what", where is file:line, a variable or the flags."""
    loc = tuple(err["loc"])
    if loc == ("site",) and err["type"] == "missing":
        loc = ("site", "data_dir")  # the one key of [site] without a default
    key = dotted(loc)
    message = _plain(err, key)
    layer = next((name for name, data in layers if _holds(data, loc)), None)
    if layer is None and err["type"] == "missing":  # attribute it to the layer holding its table
        layer = next((name for name, data in layers if loc[:-1] and _holds(data, loc[:-1])), None)
    if layer == "flag":
        return f"command line: {key}: {message}"
    if layer == "env":
        return f"environment {env_var_for(loc) or 'TWINPACS_…'}: {key}: {message}"
    if config_file is None:
        return f"{key}: {message}"
    # A missing key has no line of its own; within a [[table]] entry, that entry's line helps.
    in_table_entry = len(loc) >= 2 and isinstance(loc[-2], int)
    line = line_of(key_lines(text), loc) if err["type"] != "missing" or in_table_entry else None
    return f"{config_file}:{line}: {key}: {message}" if line else f"{config_file}: {key}: {message}"


def _holds(data: Any, loc: tuple[str | int, ...]) -> bool:
    for part in loc:
        if isinstance(part, int) and isinstance(data, list) and part < len(data):
            data = data[part]
        elif isinstance(part, str) and isinstance(data, Mapping) and part in data:
            data = data[part]
        else:
            return False
    return True


def _plain(err: Any, key: str) -> str:
    if err["type"] == "missing":
        return "required setting is missing"
    if err["type"] == "extra_forbidden":
        return "unknown setting"
    message = str(err["msg"]).removeprefix("Value error, ")
    value = err.get("input")
    if isinstance(value, (str, int, float, bool)) and err["type"] != "value_error":
        message += f" (got {masked(key, value)!r})"
    return message


# -- what serving requires -----------------------------------------------------------------

# Settings with no safe default: `twinpacs serve` and `config check` insist that each is given
# explicitly (file, environment or flag), so that a setting lost in a move stops the start.
REQUIRED_TO_SERVE: dict[str, str] = {
    "site.data_dir": "the folder of the object store (--data-dir, TWINPACS_SITE__DATA_DIR)",
    "site.role": "active or standby at first start (--role, TWINPACS_SITE__ROLE)",
    "database.url": "the index database, e.g. sqlite:////srv/twinpacs/index.sqlite3 or "
                    "postgresql+psycopg://user@host/db (--database-url, TWINPACS_DATABASE__URL)",
    "peers": "[[peers]] tables, or peers = [] for a single site (--peer NAME=URL, --no-peers)",
}


def missing_to_serve(settings: Settings) -> list[str]:
    missing = [key for key in REQUIRED_TO_SERVE if not settings._explicit_under(key)]
    if "database.url" not in missing and not settings.database.url.strip():
        missing.append("database.url")  # given, but empty: no database named
    return missing


def require_to_serve(settings: Settings) -> None:
    """ConfigurationError naming every required setting that was not given, and the file."""
    missing = missing_to_serve(settings)
    if missing:
        where = f"in {settings.config_file}" if settings.config_file else "(no configuration file)"
        lines = "\n  ".join(f"{key}: {REQUIRED_TO_SERVE[key]}" for key in missing)
        raise ConfigurationError(
            f"required setting{'s' if len(missing) > 1 else ''} missing {where}; no safe default exists, "
            f"give each in the file, the environment or a flag:\n  {lines}")


# -- secrets ---------------------------------------------------------------------------------

MASK = "***"
_SECRET_NAME = re.compile(r"password|passwd|secret|token|api[_-]?key|credential", re.IGNORECASE)


def masked(key: str, value: Any) -> Any:
    """`value` as it may be shown or stored: the one place that decides what is a secret.
    A key named like a secret hides its whole value; a URL anywhere keeps its user but hides
    its password (and the whole user part of an http(s) URL, often a token) and secret-named
    query parameters."""
    if _SECRET_NAME.search(key.rsplit(".", 1)[-1]) and value not in ("", None, [], {}):
        return MASK
    if isinstance(value, str):
        return _mask_url(value)
    if isinstance(value, list):
        return [masked(key, v) for v in value]
    if isinstance(value, dict):
        return {k: masked(f"{key}.{k}", v) for k, v in value.items()}
    return value


def _mask_url(text: str) -> str:
    if "://" not in text:
        return text
    try:
        parts = urlsplit(text)
    except ValueError:
        return text
    # Replaced in place, never rebuilt: urlunsplit would turn sqlite://// into sqlite://.
    if "@" in parts.netloc:
        userinfo, host = parts.netloc.rsplit("@", 1)
        user, has_password, _ = userinfo.partition(":")
        if has_password:
            userinfo = f"{user}:{MASK}"
        elif parts.scheme in ("http", "https"):
            userinfo = MASK
        text = text.replace(f"//{parts.netloc}", f"//{userinfo}@{host}", 1)
    if parts.query:
        query = "&".join(
            f"{name}={MASK}" if sep and _SECRET_NAME.search(name) else f"{name}{sep}{value}"
            for name, sep, value in (piece.partition("=") for piece in parts.query.split("&")))
        text = text.replace(f"?{parts.query}", f"?{query}", 1)
    return text


# -- descriptions ----------------------------------------------------------------------------

def describe(key: str) -> str:
    """The one-line description of a dotted key ("peers[0].port" reads PeerSettings.port)."""
    model: Any = Settings
    text = ""
    for part in re.sub(r"\[\d+\]", "", key).split("."):
        fields = getattr(model, "model_fields", {})
        if part not in fields:
            return text
        info = fields[part]
        text = info.description or ""
        model = _model_of(info.annotation)
    return text


def _model_of(annotation: Any) -> Any:
    """The settings model inside an annotation: SiteSettings, or PeerSettings for list[PeerSettings]."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            return arg
    return None
