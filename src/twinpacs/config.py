"""The one typed configuration object. Each key is declared once here, with its type,
default and help; nothing reads configuration anywhere else.

Precedence: command-line flags > environment (TWINPACS_SECTION__KEY) > TOML file > defaults.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from .errors import ConfigurationError

_AE_TITLE = re.compile(r"^[\x20-\x5b\x5d-\x7e]{1,16}$")  # PS3.5 AE VR: no backslash, ≤16


def check_ae_title(value: str) -> str:
    stripped = value.strip()
    if not _AE_TITLE.match(value) or not stripped:
        raise ValueError(f"{value!r} is not a valid AE title (1-16 printable characters, no backslash)")
    return stripped


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SiteSettings(_Section):
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


class DicomSettings(_Section):
    bind: str = Field("127.0.0.1", description="Address the DICOM listener binds to.")
    port: int = Field(11112, ge=0, le=65535, description="DICOM (DIMSE) port; 0 picks a free one.")
    move_destinations: dict[str, str] = Field(
        default_factory=dict,
        description="C-MOVE destinations: AE title = \"host:port\". A move to any other AE is refused.",
    )
    max_associations: int = Field(32, ge=1, description="Concurrent DICOM associations accepted.")

    @field_validator("move_destinations")
    @classmethod
    def _destinations(cls, v: dict[str, str]) -> dict[str, str]:
        for ae, address in v.items():
            check_ae_title(ae)
            parse_host_port(address)
        return {check_ae_title(ae): address for ae, address in v.items()}


class HttpSettings(_Section):
    bind: str = Field("127.0.0.1", description="Address the HTTP server (DICOMweb, API) binds to.")
    port: int = Field(8080, ge=0, le=65535, description="HTTP port; 0 picks a free one.")


class DatabaseSettings(_Section):
    url: str = Field("", description="SQLAlchemy URL of the index; empty means SQLite in data_dir.")


class StorageSettings(_Section):
    conflict_policy: Literal["keep-first", "newer-wins"] = Field(
        "keep-first",
        description="Same SOP Instance UID, different content: which version is current. "
        "The other is always kept as a conflicting version.",
    )


class PeerSettings(_Section):
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

    @field_validator("ae_title")
    @classmethod
    def _ae(cls, v: str) -> str:
        return check_ae_title(v) if v else v

    @property
    def base_url(self) -> str:
        if self.api_url:
            return self.api_url.rstrip("/")
        return self.dicomweb_url.rstrip("/").removesuffix("/dicom-web")


class ReplicationSettings(_Section):
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


class NoticeSettings(_Section):
    webhooks: list[str] = Field(default_factory=list, description="URLs that receive every notice as JSON (POST).")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="TWINPACS_", env_nested_delimiter="__", extra="forbid"
    )

    site: SiteSettings
    dicom: DicomSettings = Field(default_factory=DicomSettings)  # type: ignore[arg-type]
    http: HttpSettings = Field(default_factory=HttpSettings)  # type: ignore[arg-type]
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)  # type: ignore[arg-type]
    storage: StorageSettings = Field(default_factory=StorageSettings)  # type: ignore[arg-type]
    peers: list[PeerSettings] = Field(default_factory=list)
    replication: ReplicationSettings = Field(default_factory=ReplicationSettings)  # type: ignore[arg-type]
    notices: NoticeSettings = Field(default_factory=NoticeSettings)  # type: ignore[arg-type]

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
        return peers

    @property
    def site_name(self) -> str:
        return self.site.name or self.site.ae_title

    @property
    def database_url(self) -> str:
        return self.database.url or f"sqlite:///{self.site.data_dir / 'index.sqlite3'}"


def parse_host_port(address: str) -> tuple[str, int]:
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{address!r} is not host:port")
    return host.strip("[]"), int(port)


def load_settings(config_file: Path | None = None, overrides: dict[str, Any] | None = None) -> Settings:
    """Build Settings from an optional TOML file, the environment and flag overrides
    (a nested dict such as {"dicom": {"port": 104}}). Raises ConfigurationError naming the key."""
    if config_file is not None and not config_file.is_file():
        raise ConfigurationError(f"configuration file {config_file} does not exist")

    class _FromFile(Settings):
        @classmethod
        def settings_customise_sources(
            cls,
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            sources: tuple[PydanticBaseSettingsSource, ...] = (init_settings, env_settings)
            if config_file is not None:
                sources += (TomlConfigSettingsSource(settings_cls, toml_file=config_file),)
            return sources

    try:
        loaded = _FromFile(**(overrides or {}))
    except ValidationError as exc:
        where = f" in {config_file}" if config_file else ""
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {_plain(err)}" for err in exc.errors()
        )
        raise ConfigurationError(f"invalid configuration{where}: {problems}") from None
    except Exception as exc:  # e.g. a TOML syntax error
        raise ConfigurationError(f"cannot read configuration {config_file}: {exc}") from None
    return Settings.model_validate(loaded.model_dump())


def _plain(err: Any) -> str:
    if err["type"] == "missing":
        return "required setting is missing"
    if err["type"] == "extra_forbidden":
        return "unknown setting"
    return str(err["msg"])
