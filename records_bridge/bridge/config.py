"""The bridge's configuration file (YAML), checked completely when loaded; paths are relative to the file.

::

    hub: {url: "https://hub.example:8443", user: records-bridge, password_file: bridge.password, ca_file: null}
    ehr: {url: "http://127.0.0.1:8090/fhir", secret_file: ehr-bridge.secret, ca_file: null}
    hospital: {mrn_system: "https://hospital.example/mrn", facility_name: "District Hospital Jaipur", facility_id: "",
               timezone: "Asia/Kolkata"}
    locker: {url: "http://127.0.0.1:8091", facility: "DH-JAIPUR"}     # optional: discharge summaries into the locker
    queue: {url: "http://127.0.0.1:8092", queues: {MED: med}}         # optional: follow-up visits booked in the OPD queue
    facility: {url: "http://127.0.0.1:8093", wards: {A: IN0810000001}, hub_id: jaipur-hub}  # optional: occupancy and KPIs
    state: bridge-state.sqlite3
    metrics_listen: "127.0.0.1:9108"   # or null

The hub account must have the ``records`` role (``teleicu users add records-bridge --role records``); the EHR
secret is a writer client's (``teleicu ehr clients add bridge --role writer``). The locker and the OPD queue take
the same hub account's session (they ask the hub who it is); ``locker.facility`` is how the locker names this
hospital when a patient has no ABHA number (with the MRN), and ``queue.queues`` maps the departments a discharge
names for its follow-up to the OPD queue service's queue ids. ``facility.wards`` maps the hub's wards to the facility
registry's ids (a ward is one hospital's ICU); the bridge sends each facility's live occupancy from the hub's census
every ``census_every_s`` (at least every ``heartbeat_s``), and the events its KPIs are computed from, under ``hub_id``
(by default the hub URL's host and port).
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, Field, SecretStr

from wire.config import ConfigError, ConfigModel, load, read_secret


class BridgeConfigError(ConfigError):
    pass


class HubSection(ConfigModel):
    url: Annotated[str, Field(pattern=r"^https?://")]
    user: Annotated[str, Field(min_length=1, max_length=64)]
    password_file: str
    ca_file: str | None = None


class EhrSection(ConfigModel):
    url: Annotated[str, Field(pattern=r"^https?://")]
    secret_file: str
    ca_file: str | None = None


def _timezone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{name!r} is not a time zone name (e.g. Asia/Kolkata)") from None
    return name


class HospitalSection(ConfigModel):
    mrn_system: Annotated[str, Field(min_length=1)]
    facility_name: Annotated[str, Field(min_length=1)]
    facility_id: str = ""
    timezone: Annotated[str, AfterValidator(_timezone)] = "Asia/Kolkata"


class LockerSection(ConfigModel):
    url: Annotated[str, Field(pattern=r"^https?://")]
    facility: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
    ca_file: str | None = None


class QueueSection(ConfigModel):
    url: Annotated[str, Field(pattern=r"^https?://")]
    queues: dict[Annotated[str, Field(min_length=1, max_length=60)], Annotated[str, Field(min_length=1, max_length=64)]]
    ca_file: str | None = None


class FacilitySection(ConfigModel):
    url: Annotated[str, Field(pattern=r"^https?://")]
    wards: dict[Annotated[str, Field(min_length=1, max_length=64)], Annotated[str, Field(pattern=r"^IN[0-9]{10}$")]] = Field(min_length=1)
    hub_id: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")] | None = None
    census_every_s: Annotated[float, Field(ge=1, le=300)] = 5.0
    heartbeat_s: Annotated[float, Field(ge=5, le=3600)] = 60.0
    ca_file: str | None = None


class BridgeFile(ConfigModel):
    hub: HubSection
    ehr: EhrSection
    hospital: HospitalSection
    locker: LockerSection | None = None
    queue: QueueSection | None = None
    facility: FacilitySection | None = None
    state: str = "bridge-state.sqlite3"
    metrics_listen: str | None = None


@dataclass(frozen=True)
class BridgeConfig:
    file: BridgeFile
    base: Path  # the config file's folder
    hub_password: SecretStr
    ehr_secret: SecretStr

    def path(self, relative: str) -> Path:
        return self.base / relative

    def verify(self, ca_file: str | None) -> ssl.SSLContext | bool:
        """How to check a server's certificate: against the hospital's CA file, or the system's trust store."""
        if not ca_file:
            return True
        try:
            return ssl.create_default_context(cafile=str(self.path(ca_file)))
        except (OSError, ssl.SSLError) as exc:
            raise BridgeConfigError(f"cannot read the CA file {self.path(ca_file)}: {exc}") from None


def load_bridge_config(path: Path) -> BridgeConfig:
    file = load(BridgeFile, path, "bridge configuration", BridgeConfigError)
    base = path.parent
    password = _read_password(path, base / file.hub.password_file)
    secret = read_secret(path, "ehr.secret_file", base / file.ehr.secret_file, BridgeConfigError)
    cfg = BridgeConfig(file, base, password, secret)
    for key, ca_file in (("hub.ca_file", file.hub.ca_file), ("ehr.ca_file", file.ehr.ca_file),
                         ("locker.ca_file", file.locker.ca_file if file.locker else None),
                         ("queue.ca_file", file.queue.ca_file if file.queue else None),
                         ("facility.ca_file", file.facility.ca_file if file.facility else None)):  # fmt: skip
        try:
            cfg.verify(ca_file)  # a CA file that cannot be read is named now, not at the first connection
        except BridgeConfigError as exc:
            raise BridgeConfigError(f"{path}: {key}: {exc}") from None
    return cfg


def _read_password(config: Path, file: Path) -> SecretStr:
    try:
        text = file.read_text().rstrip("\n")
    except OSError as exc:
        raise BridgeConfigError(f"{config}: hub.password_file: cannot read {file}: {exc.strerror}") from None
    if not text:
        raise BridgeConfigError(f"{config}: hub.password_file: {file} is empty")
    return SecretStr(text)
