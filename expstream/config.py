"""Every setting, read once from the environment into one frozen object.

Configuration flows one way: environment (and ``init`` arguments) → :class:`Settings` →
components. Nothing else in expstream reads ``os.environ`` for its own settings.
"""

from __future__ import annotations

import getpass
from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from expstream.exceptions import ConfigurationError
from expstream.service_urls import parse_clickhouse_url, parse_s3_url

__all__ = ["CHUNK_ENVELOPE_BYTES", "Settings", "env_name", "load_settings"]

#: bytes an artifact chunk event needs besides the chunk (header, hash, path fields)
CHUNK_ENVELOPE_BYTES = 16 << 10


def _default_owner() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no passwd entry in some containers
        return "unknown"


class Settings(BaseSettings):
    """What a process needs to know to log and to read. Unset services mean the embedded default."""

    model_config = SettingsConfigDict(env_prefix="EXPSTREAM_", frozen=True, extra="ignore", populate_by_name=True)

    home: Path = Field(default=Path(".expstream"), description="folder of the embedded default")
    project: str | None = Field(
        default=None,
        validation_alias=AliasChoices("EXPSTREAM_PROJECT", "NEPTUNE_PROJECT"),
        description="project used when init() gets none",
    )
    run_id: str | None = Field(default=None, description="attach this process to the experiment of this run id")
    # --- the legacy client's variables (docs/legacy-behaviour.md) --------------------------------
    backend: str | None = Field(
        default=None,
        validation_alias=AliasChoices("NEPTUNE_BACKEND"),
        description="'offline' selects the legacy no-op backend",
    )
    api_token: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("NEPTUNE_API_TOKEN"), description="accepted, ignored"
    )
    notebook_id: str | None = Field(
        default=None,
        validation_alias=AliasChoices("NEPTUNE_NOTEBOOK_ID"),
        description="recorded on new experiments",
    )
    notebook_path: str | None = Field(
        default=None,
        validation_alias=AliasChoices("NEPTUNE_NOTEBOOK_PATH"),
        description="recorded on new experiments",
    )
    owner: str = Field(default_factory=_default_owner, description="owner recorded on new experiments")
    flush_interval: float = Field(default=0.2, gt=0, description="seconds between background flushes")
    batch_points: int = Field(default=10_000, ge=1, description="points per message at most")
    buffer_points: int = Field(default=100_000, ge=1000, description="buffered points before log_* waits")
    chunk_bytes: int = Field(default=1 << 20, ge=1024, description="artifact bytes per chunk event")
    max_event_bytes: int = Field(
        default=4 << 20,
        ge=64 << 10,
        le=15 << 20,  # below the consumers' 16 MiB fetch size per partition
        description="largest event (Avro message); must fit the broker's max.message.bytes",
    )
    log_partitions: int = Field(default=4, ge=1, le=256, description="partitions of a new local log")
    read_barrier_timeout: float = Field(
        default=60.0, gt=0, description="seconds a read waits for this process's own writes to become visible"
    )
    lock_timeout: float = Field(
        default=60.0, gt=0, description="seconds a local lock is waited for when the caller gives no timeout"
    )
    materializer_idle: float = Field(
        default=60.0,
        gt=0,
        description="seconds the warm materializer of an embedded home stays up with no request and nothing new",
    )
    segment_bytes: int = Field(default=256 << 20, ge=1 << 16, description="local log segment size")
    ui_token: SecretStr | None = Field(
        default=None, description="access token of `expstream ui`; required to listen beyond loopback"
    )

    # --- distributed mode: unset means the embedded default ----------------------------------
    kafka: str | None = Field(default=None, description="Kafka bootstrap servers, host:port[,host:port]")
    kafka_security_protocol: str = Field(default="PLAINTEXT", description="PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL")
    kafka_sasl_mechanism: str | None = Field(default=None, description="PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512")
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_cafile: Path | None = Field(default=None, description="CA bundle to verify the brokers")
    kafka_topic_prefix: str = Field(
        default="expstream", pattern=r"^[A-Za-z0-9._-]{1,100}$", description="topics are <prefix>.events, ..."
    )
    kafka_partitions: int = Field(default=12, ge=1, description="partitions of topics expstream creates")
    kafka_compression: str = Field(default="lz4", description="lz4, gzip or none")
    kafka_replication_factor: int | None = Field(
        default=None, ge=1, description="replicas of each topic expstream creates; unset: min(3, brokers)"
    )
    kafka_min_insync_replicas: int | None = Field(
        default=None, ge=1, description="min.insync.replicas of the topics expstream creates; unset: replicas - 1"
    )
    clickhouse: SecretStr | None = Field(default=None, description="clickhouse://user:password@host:port/database")
    clickhouse_ca: Path | None = Field(default=None, description="CA bundle for clickhouses:// (TLS)")
    clickhouse_cluster: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,99}$",
        description="ClickHouse cluster (remote_servers) of sharded, replicated tables; unset: one server",
    )
    clickhouse_timeout: float = Field(
        default=30.0, gt=0, description="seconds one ClickHouse connect or request may take before it fails"
    )
    s3: SecretStr | None = Field(default=None, description="http(s)://access_key:secret_key@host:port/bucket")
    s3_ca: Path | None = Field(default=None, description="CA bundle for an https S3 endpoint")
    replay_clickhouse_password: SecretStr | None = Field(
        default=None, description="password for the --clickhouse target of expstream replay"
    )
    replay_s3_secret_key: SecretStr | None = Field(
        default=None, description="secret key for the --s3 target of expstream replay"
    )
    spool_bytes: int = Field(default=1 << 30, ge=1 << 20, description="local spool while Kafka is unreachable")
    consumer_group: str = Field(default="expstream", description="Kafka consumer group of the materializers")
    consumer_batch_messages: int = Field(
        default=64, ge=1, description="messages per consumer batch: smaller is fresher, larger is cheaper"
    )

    @field_validator("project", "kafka", "run_id", "backend", "notebook_id", "notebook_path")
    @classmethod
    def _empty_is_none(cls, value: str | None) -> str | None:
        return value or None

    @field_validator("clickhouse_cluster", mode="before")
    @classmethod
    def _no_cluster_when_empty(cls, value: str | None) -> str | None:
        return value or None  # before the name's pattern is checked: empty means one server

    @field_validator("clickhouse", "s3")
    @classmethod
    def _url_parses(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        """A service URL that cannot work fails when the settings load (the message repeats no secret)."""
        if value is not None and value.get_secret_value():
            parse = parse_clickhouse_url if info.field_name == "clickhouse" else parse_s3_url
            try:
                parse(value.get_secret_value())
            except ConfigurationError as exc:
                raise ValueError(str(exc)) from None
        return value

    @model_validator(mode="after")
    def _chunks_fit_events(self) -> Settings:
        if self.chunk_bytes + CHUNK_ENVELOPE_BYTES > self.max_event_bytes:
            raise ValueError(
                f"EXPSTREAM_CHUNK_BYTES={self.chunk_bytes} does not fit EXPSTREAM_MAX_EVENT_BYTES="
                f"{self.max_event_bytes} (a chunk event needs {CHUNK_ENVELOPE_BYTES} bytes more than its chunk)"
            )
        return self

    @model_validator(mode="after")
    def _insync_fits_replicas(self) -> Settings:
        rf, isr = self.kafka_replication_factor, self.kafka_min_insync_replicas
        if rf is not None and isr is not None and isr > rf:
            raise ValueError(
                f"EXPSTREAM_KAFKA_MIN_INSYNC_REPLICAS={isr} is more than EXPSTREAM_KAFKA_REPLICATION_FACTOR={rf}: "
                "no write could ever be acknowledged"
            )
        return self

    @property
    def distributed(self) -> bool:
        """True when any service is configured; then all three must be."""
        return bool(self.kafka or self.clickhouse or self.s3)


def env_name(field: str) -> str:
    """The environment variable that sets ``field`` (the legacy name where it has one)."""
    alias = Settings.model_fields[field].validation_alias
    if isinstance(alias, AliasChoices):
        return str(alias.choices[-1])
    return f"EXPSTREAM_{field.upper()}"


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment (``EXPSTREAM_*`` first, then the legacy ``NEPTUNE_*`` names)."""
    values = {k: v for k, v in overrides.items() if v is not None}
    try:
        return Settings(**values)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = "; ".join(
            (f"{_variable(err['loc'])}: " if err["loc"] else "") + str(err["msg"]).removeprefix("Value error, ")
            for err in exc.errors()
        )
        raise ConfigurationError(f"invalid expstream settings: {problems}") from None


def _variable(loc: tuple[int | str, ...]) -> str:
    name = "_".join(str(p) for p in loc)
    if name in Settings.model_fields:
        return env_name(name)
    return name if name.upper().startswith(("EXPSTREAM_", "NEPTUNE_")) else f"EXPSTREAM_{name.upper()}"
