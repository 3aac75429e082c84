"""Edge agent configuration: the gateway's YAML file, its schema and validation.

Example::

    agent: {id: edge-A, ward: A}
    hub: {url: "wss://hub.example:8443/ws/edge", secret_file: edge-A.secret, ca_file: hospital-ca.pem}
    uplink: {flush_ms: 250, spool: /var/lib/teleicu/edge-A.spool.sqlite3, spool_max_mb: 512, backlog_rate: 200}
    devices:
      - {bed: A-01, id: mon-A-01, driver: tsp, port: /dev/ttyUSB0, baud: 115200}
      - {id: gw-1, driver: <multi-bed driver>, beds: {"ICU^^BED04": A-04}, <transport settings>}
    cameras:                       # optional: live bedside video (edge_agent.video)
      - {bed: A-01, source: "v4l2:/dev/video0"}
      - {bed: A-04, source: "rtsp://cam-a04.icu.local/stream1", fps: 10, talkback: false}
    video: {max_sessions: 8}

A single-bed device names its ``bed``; a multi-bed device (a gateway or a topic
tree) maps the device's own bed identifiers to ours with ``beds`` (a list means
the identifiers are already ours). The keys a device may carry besides
``id, driver, bed/beds, options, scenario`` are its transport's settings, as
its transport declares them (``edge_agent.transports``); ``options`` are the
driver's, as the driver declares them (``DriverSpec.options``). Everything is
checked when the file is loaded: a typo or a bad value is an ``EdgeConfigError``
(a ``wire.config.ConfigError``) naming the file, the key path and the problem,
e.g. ``edge-A.yaml: devices[2].baud: must be a whole number, not '9600'``,
never a silent default or a failure when the device starts.

``hub.secret_file`` names the file holding the agent's secret (``teleicu agents
add`` prints it once), relative to the configuration file; it is read at load,
kept as a ``SecretStr`` (never shown in logs or reprs), and required: the hub
refuses an agent without one. ``hub.ca_file`` trusts a hospital's own
certificate authority for a ``wss://`` hub; ``hub.cert_file`` and
``hub.key_file`` present a client certificate (mutual TLS), for hospitals that
want certificates as well.

``uplink.transport`` picks the way out: ``websocket`` (the default) to the
one hub ``hub:`` names, or ``jetstream`` to the NATS JetStream servers the
``jetstream:`` section names (``edge_agent.jetstream_uplink``, docs/jetstream.md)::

    uplink: {transport: jetstream}
    jetstream:
      servers: ["nats://nats-1:4222", "nats://nats-2:4222", "nats://nats-3:4222"]
      user: edge-A
      password_file: edge-A.nats-password      # or token_file
      stream: {name: TELEICU_FRAMES, replicas: 3}

With ``jetstream`` the agent and ward ids become NATS subject tokens
(``wire.jetstream_contract.token``: letters, digits, ``-`` and ``_``), the
credentials are required (read at load, like the hub secret), and ``hub:`` is
needed only for cameras (video signalling still goes to a hub).

``cameras`` (optional) lists one camera per bed: ``source`` is ``testpattern``
(the simulator), ``v4l2:/dev/videoN`` or an ``rtsp://``, ``rtsps://``,
``http://`` or ``https://`` IP camera; ``width`` x ``height`` (640x480, even),
``fps`` (15, 1 to 30), ``bitrate_kbps`` (500, what a district uplink carries),
``talkback`` (true: the console may speak at the bedside) and
``talkback_output`` (``default``: the gateway's sound output, ``wav:/path.wav``:
one file per session beside that name, ``none``). ``video.max_sessions`` (8)
caps the viewers the gateway serves at once. Cameras need the hub URL to end
in ``/ws/edge``: the video signalling socket is ``/ws/edge/video`` beside it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, ConfigDict, Field, PrivateAttr, SecretStr, ValidationError, field_validator, model_validator

from edge_agent.drivers import get_driver
from edge_agent.transports import transport_settings
from wire.codec import MAX_ID_LEN
from wire.config import ConfigError, ConfigModel, Expect, Problem, load, problems, read_secret, unknown_keys, validate
from wire.jetstream_contract import DEFAULT_PREFIX, DEFAULT_STATUS_PREFIX, JetStreamContractError, check_prefix, overlaps, token
from wire.jetstream_stream import StreamSettings
from wire.nats_connection import NatsCredentials, NatsSettings, read_credentials

IDENT = f"a non-empty string of at most {MAX_ID_LEN} characters"
Ident = Annotated[str, Field(min_length=1, max_length=MAX_ID_LEN), Expect(IDENT)]


class EdgeConfigError(ConfigError):
    """An edge agent configuration that cannot be used."""


@dataclass(frozen=True, slots=True)
class DeviceConfig:
    id: str
    driver: str
    bed: str | None  # single-bed devices
    beds: dict[str, str] = field(default_factory=dict)  # multi-bed devices: device's bed id -> our bed id
    settings: dict[str, Any] = field(default_factory=dict)  # transport settings (port, baud, listen, broker...)
    options: dict[str, Any] = field(default_factory=dict)  # parser options

    @property
    def served_beds(self) -> tuple[str, ...]:
        return (self.bed,) if self.bed else tuple(self.beds.values())


def _ws_url(url: str) -> str:
    if not url.startswith(("ws://", "wss://")):
        raise ValueError(f"must be a ws:// or wss:// URL, not {url!r}")
    return url


class UplinkSettings(ConfigModel):
    """The ``uplink:`` section (optional, every key has a default)."""

    flush_ms: Annotated[int, Field(ge=10, le=5000)] = 250
    spool: str | None = None  # spool file; default <config dir>/<agent id>.spool.sqlite3
    spool_max_mb: Annotated[int, Field(ge=1)] = 512
    backlog_rate: Annotated[int, Field(ge=1)] = 200  # backlog frames per second after an outage, behind live data
    backoff_initial_s: Annotated[float, Field(gt=0)] = 0.25
    backoff_max_s: Annotated[float, Field(gt=0)] = 15.0
    status_s: Annotated[float, Field(ge=0.05, le=60)] = 5.0  # a status report (device conditions, spool and its floor) at least this often
    transport: Literal["websocket", "jetstream"] = "websocket"  # websocket: to the hub; jetstream: to NATS (jetstream:)


class UplinkConfig(UplinkSettings):
    """The uplink's settings: the ``uplink:`` section, the hub's URL and how the agent proves who it is."""

    url: Annotated[str, AfterValidator(_ws_url)] | None = None  # None only with transport jetstream and no cameras
    secret: SecretStr | None = None  # the agent's secret, read from hub.secret_file (None: the hub will refuse it)
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None


def _prefix(prefix: str) -> str:
    try:
        return check_prefix(prefix)
    except JetStreamContractError as exc:
        raise ValueError(str(exc)) from None


class JetStreamSection(NatsSettings):
    """The ``jetstream:`` section, for ``uplink.transport: jetstream``: servers and credentials (``NatsSettings``),
    the subject prefix, how many publishes may await their acknowledgement, and the stream (``StreamSettings``)."""

    subject_prefix: Annotated[str, AfterValidator(_prefix)] = DEFAULT_PREFIX
    status_prefix: Annotated[str, AfterValidator(_prefix)] = DEFAULT_STATUS_PREFIX  # device and spool reports, core NATS
    max_in_flight: Annotated[int, Field(ge=1, le=1024)] = 64  # publishes awaiting their acknowledgement at once
    ack_timeout_s: Annotated[float, Field(ge=0.1, le=60)] = 5.0  # a publish unacknowledged this long is retried
    provision_stream: bool = True  # create the stream if it is missing (false: the hub's workers or an operator do)
    stream: StreamSettings = StreamSettings()

    @field_validator("stream", mode="before")
    @classmethod
    def _stream_may_be_empty(cls, raw: Any) -> Any:
        return {} if raw is None else raw

    @model_validator(mode="after")
    def _status_outside_the_stream(self) -> JetStreamSection:
        if overlaps(self.status_prefix, self.subject_prefix):
            raise ValueError(f"status_prefix {self.status_prefix} and subject_prefix {self.subject_prefix} overlap: "
                             "the frames stream would capture status reports")  # fmt: skip
        return self


@dataclass(frozen=True, slots=True)
class CameraConfig:
    bed: str
    source: str  # testpattern | v4l2:/dev/videoN | rtsp://... | rtsps://... | http(s)://...
    width: int = 640
    height: int = 480
    fps: int = 15
    bitrate_kbps: int = 500
    talkback: bool = True
    talkback_output: str = "default"  # default | wav:/path/file.wav | none


@dataclass(frozen=True, slots=True)
class VideoConfig:
    max_sessions: int = 8


@dataclass(frozen=True, slots=True)
class EdgeConfig:
    agent_id: str
    ward: str
    uplink: UplinkConfig
    devices: tuple[DeviceConfig, ...]
    cameras: tuple[CameraConfig, ...] = ()
    video: VideoConfig = VideoConfig()
    jetstream: JetStreamSection | None = None  # with uplink.transport jetstream
    nats_credentials: NatsCredentials | None = None  # read from jetstream's files by load_edge_config


# --- the file ----------------------------------------------------------------------------------


class AgentSection(ConfigModel):
    id: Ident
    ward: Ident


class HubSection(ConfigModel):
    url: Annotated[str, AfterValidator(_ws_url)]
    secret_file: Annotated[str, Field(min_length=1)]
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None

    @model_validator(mode="after")
    def _cert_with_key(self) -> HubSection:
        if (self.cert_file is None) != (self.key_file is None):
            raise Problem("cert_file and key_file go together (mutual TLS)", "cert_file")
        return self


def _known_driver(name: str) -> str:
    try:
        get_driver(name)
    except KeyError as exc:
        raise ValueError(exc.args[0]) from None
    return name


class DeviceEntry(ConfigModel):
    """One device: these keys, the transport's settings beside them, the driver's options under ``options``."""

    model_config = ConfigDict(extra="allow")  # the transport's settings: checked against its model below
    id: Ident
    driver: Annotated[str, AfterValidator(_known_driver)]
    bed: Any = None  # single-bed drivers
    beds: Any = None  # multi-bed drivers: a mapping of the device's bed ids to ours, or a list of ours
    options: dict[str, Any] | None = None
    scenario: str | None = None  # what a simulator plays on this bed (written by ``teleicu sim``; not used here)
    _device: DeviceConfig = PrivateAttr()

    @model_validator(mode="after")
    def _driver_and_transport(self) -> DeviceEntry:
        spec = get_driver(self.driver)
        settings = self._settings(spec.name, spec.transport)
        options = dict(self.options or {})
        try:
            spec.options.model_validate(options)
        except ValidationError as exc:
            raise Problem.many((("options", *at), text) for at, text in problems(exc, spec.options)) from None
        bed, beds = self._beds(spec.name, spec.multi_bed)
        self._device = DeviceConfig(id=self.id, driver=spec.name, bed=bed, beds=beds, settings=settings, options=options)
        return self

    def _settings(self, driver: str, transport: str) -> dict[str, Any]:
        model = transport_settings(transport)
        given = dict(self.model_extra or {})
        unknown = [key for key in given if key not in model.model_fields]
        if unknown:
            raise Problem(unknown_keys(unknown, [*type(self).model_fields, *model.model_fields]))
        missing = sorted(name for name, f in model.model_fields.items() if f.is_required() and name not in given)
        if missing:
            raise Problem(f"driver {driver!r} ({transport}) needs {missing}")
        try:
            settings = model.model_validate(given)
        except ValidationError as exc:
            raise Problem.many(problems(exc, model)) from None
        return settings.model_dump(exclude_unset=True, exclude_none=True)

    def _beds(self, driver: str, multi_bed: bool) -> tuple[str | None, dict[str, str]]:
        if not multi_bed:
            if self.beds is not None:
                raise Problem(f"driver {driver!r} serves one bed: give 'bed', not 'beds'")
            return _ident(self.bed, "bed"), {}
        if self.bed is not None or not self.beds:
            raise Problem(f"driver {driver!r} serves several beds: give 'beds' (a mapping or list), not 'bed'")
        beds = {b: b for b in self.beds} if isinstance(self.beds, list) else self.beds
        if not isinstance(beds, dict):
            raise Problem("must be a mapping of device bed id to bed id, or a list of bed ids", "beds")
        return None, {str(k): _ident(v, ("beds", str(k))) for k, v in beds.items()}

    @property
    def device(self) -> DeviceConfig:
        return self._device


def _ident(value: Any, at: str | tuple[str, ...]) -> str:
    if not isinstance(value, str) or not 0 < len(value) <= MAX_ID_LEN:
        raise Problem(f"must be {IDENT}, not {value!r}", at)
    return value


CAMERA_URL_SCHEMES = ("rtsp://", "rtsps://", "http://", "https://")
SOURCE = "testpattern, v4l2:/dev/videoN or an rtsp://, rtsps://, http:// or https:// camera URL"


def _camera_source(source: str) -> str:
    if source == "testpattern" or (source.startswith(CAMERA_URL_SCHEMES) and len(source.split("://", 1)[1]) > 0):
        return source
    if source.startswith("v4l2:") and source[5:].startswith("/dev/") and len(source) > 10:
        return source
    raise ValueError(f"must be {SOURCE}, not {source!r}")


def _talkback_output(output: str) -> str:
    if output in ("default", "none") or (output.startswith("wav:") and output.endswith(".wav") and len(output) > 8):
        return output
    raise ValueError(f"must be default, none or wav:/path/file.wav, not {output!r}")


def _even(n: int) -> int:
    if n % 2:
        raise ValueError(f"must be even (the video is 4:2:0), not {n}")
    return n


class CameraEntry(ConfigModel):
    """One bed's camera (``cameras:``); the defaults suit a district hospital's uplink."""

    bed: Ident
    source: Annotated[str, AfterValidator(_camera_source), Expect(SOURCE)]
    width: Annotated[int, Field(ge=320, le=1920), AfterValidator(_even)] = 640
    height: Annotated[int, Field(ge=240, le=1080), AfterValidator(_even)] = 480
    fps: Annotated[int, Field(ge=1, le=30)] = 15
    bitrate_kbps: Annotated[int, Field(ge=100, le=4000)] = 500
    talkback: bool = True
    talkback_output: Annotated[str, AfterValidator(_talkback_output)] = "default"

    def camera(self) -> CameraConfig:
        return CameraConfig(**self.model_dump())


class VideoSection(ConfigModel):
    """The ``video:`` section (optional)."""

    max_sessions: Annotated[int, Field(ge=1, le=64)] = 8


def video_url(hub_url: str) -> str:
    """The hub's video signalling socket beside its edge socket: ``.../ws/edge`` -> ``.../ws/edge/video``."""
    base, sep, query = hub_url.partition("?")
    if not base.rstrip("/").endswith("/ws/edge"):
        raise ValueError(f"must end in /ws/edge for video (the signalling socket is /ws/edge/video beside it), not {hub_url!r}")
    return base.rstrip("/") + "/video" + sep + query


class EdgeFile(ConfigModel):
    """An edge agent's YAML file."""

    agent: AgentSection
    hub: HubSection | None = None  # required with uplink.transport websocket, and for cameras
    uplink: UplinkSettings = UplinkSettings()
    jetstream: JetStreamSection | None = None  # required with uplink.transport jetstream, refused without it
    devices: list[DeviceEntry] = []  # at least one device or one camera (a camera-only gateway is fine)
    cameras: Annotated[list[CameraEntry], Field(max_length=64)] = []
    video: VideoSection = VideoSection()

    @field_validator("uplink", "video", mode="before")
    @classmethod
    def _section_may_be_empty(cls, raw: Any) -> Any:
        return {} if raw is None else raw

    @field_validator("cameras", mode="before")
    @classmethod
    def _cameras_may_be_empty(cls, raw: Any) -> Any:
        return [] if raw is None else raw

    @model_validator(mode="after")
    def _something_to_do(self) -> EdgeFile:
        if not self.devices and not self.cameras:
            raise Problem("must be a non-empty list (a gateway needs at least one device or camera)", ("devices",))
        return self

    @model_validator(mode="after")
    def _one_way_out(self) -> EdgeFile:
        if self.uplink.transport == "websocket":
            if self.jetstream is not None:
                raise Problem("given, but uplink.transport is websocket: set uplink.transport: jetstream to use it", "jetstream")
            if self.hub is None:
                raise Problem("missing hub (the hub's url and secret_file), or set uplink.transport: jetstream")
            return self
        if self.jetstream is None:
            raise Problem("missing jetstream (servers and credentials), as uplink.transport is jetstream")
        if self.cameras and self.hub is None:
            raise Problem("missing hub: cameras need the hub's url and secret_file for video signalling", "cameras")
        for key in ("id", "ward"):  # they become subject tokens: <prefix>.<ward>.<agent>
            try:
                token(getattr(self.agent, key), f"agent {key}")
            except JetStreamContractError as exc:
                raise Problem(f"{exc} (uplink.transport is jetstream)", ("agent", key)) from None
        return self

    @model_validator(mode="after")
    def _one_camera_per_bed(self) -> EdgeFile:
        seen: set[str] = set()
        for n, cam in enumerate(self.cameras):
            if cam.bed in seen:
                raise Problem(f"bed {cam.bed!r} has a camera already: one camera per bed", ("cameras", n, "bed"))
            seen.add(cam.bed)
        if self.cameras and self.hub is not None:  # without a hub: refused by _one_way_out
            try:
                video_url(self.hub.url)
            except ValueError as exc:
                raise Problem(str(exc), ("hub", "url")) from None
        return self

    @model_validator(mode="after")
    def _one_device_per_id_and_bed(self) -> EdgeFile:
        seen: set[str] = set()
        for n, dev in enumerate(self.devices):
            if dev.id in seen:
                raise Problem(f"device id {dev.id!r} used twice", ("devices", n))
            seen.add(dev.id)
        served = Counter(bed for dev in self.devices for bed in dev.device.served_beds)
        dupes = sorted(bed for bed, count in served.items() if count > 1)
        if dupes:
            raise Problem(f"beds served by more than one device: {dupes}", "devices")
        return self

    def config(self) -> EdgeConfig:
        hub = self.hub
        uplink = UplinkConfig(**self.uplink.model_dump()) if hub is None else \
            UplinkConfig(url=hub.url, ca_file=hub.ca_file, cert_file=hub.cert_file, key_file=hub.key_file, **self.uplink.model_dump())  # fmt: skip
        return EdgeConfig(agent_id=self.agent.id, ward=self.agent.ward, uplink=uplink,
                          devices=tuple(dev.device for dev in self.devices),
                          cameras=tuple(cam.camera() for cam in self.cameras),
                          video=VideoConfig(max_sessions=self.video.max_sessions), jetstream=self.jetstream)  # fmt: skip


def parse_edge_config(raw: Any, where: str = "edge config") -> EdgeConfig:
    """Validate an already-parsed edge configuration; ``where`` names it in error messages."""
    return validate(EdgeFile, raw, where, EdgeConfigError).config()


def load_edge_config(path: Path) -> EdgeConfig:
    """Read and validate an edge agent's YAML file; the spool defaults to ``<agent id>.spool.sqlite3`` beside it."""
    file = load(EdgeFile, path, "edge config", EdgeConfigError)
    cfg = file.config()
    beside = {k: str(path.parent / v) for k, v in (("ca_file", cfg.uplink.ca_file), ("cert_file", cfg.uplink.cert_file),
                                                   ("key_file", cfg.uplink.key_file)) if v is not None}  # fmt: skip
    if file.hub is not None:
        secret = read_secret(path, "hub.secret_file", path.parent / file.hub.secret_file, EdgeConfigError)
        cfg = replace(cfg, uplink=cfg.uplink.model_copy(update={"secret": secret, **beside}))
    if cfg.jetstream is not None:
        js = cfg.jetstream
        credentials = read_credentials(path, "jetstream", js, EdgeConfigError)
        if js.ca_file is not None:
            js = js.model_copy(update={"ca_file": str(path.parent / js.ca_file)})
        cfg = replace(cfg, jetstream=js, nats_credentials=credentials)
    if cfg.uplink.spool is None:  # keep the spool next to the config, named for the agent
        cfg = replace(cfg, uplink=cfg.uplink.model_copy(update={"spool": str(path.parent / f"{cfg.agent_id}.spool.sqlite3")}))
    return cfg
