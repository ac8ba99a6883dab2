"""Settings of the notifier service, read once from the environment."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from cvmatch.notifier.webhooks import EgressPolicy, RetrySchedule
from cvmatch.platform.settings import CommonSettings, Env, SettingsError

# Only accepted with CVMATCH_ENV=local or test: secrets encrypted under it are readable by anyone.
LOCAL_DEV_SECRETS_KEY = base64.b64encode(b"cvmatch-local-dev-notifier-key!!").decode()
DEFAULT_SCHEDULE = "1,2,4,8,16"


def _secrets_key(env: Env, environment: str) -> bytes:
    raw = env.optional("NOTIFIER_SECRETS_KEY")
    if raw is None:
        if environment not in ("local", "test"):
            raise SettingsError("NOTIFIER_SECRETS_KEY is required (base64 of 32 random bytes)")
        raw = LOCAL_DEV_SECRETS_KEY
    try:
        key = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        raise SettingsError("NOTIFIER_SECRETS_KEY must be base64") from None
    if len(key) != 32:
        raise SettingsError("NOTIFIER_SECRETS_KEY must decode to 32 bytes (AES-256)")
    if raw == LOCAL_DEV_SECRETS_KEY and environment not in ("local", "test"):
        raise SettingsError("NOTIFIER_SECRETS_KEY is the public development value; set a real key")
    return key


@dataclass(frozen=True)
class Settings:
    """Everything the notifier service reads from its environment."""

    common: CommonSettings
    environment: str
    # Egress: plain http:// and loopback destinations only for local receivers (tests, make run).
    egress: EgressPolicy
    schedule: RetrySchedule
    # AES-256-GCM key that webhook signing secrets are stored under.
    secrets_key: bytes
    workers: int
    endpoint_concurrency: int
    connect_timeout_seconds: float
    timeout_seconds: float
    # A claimed delivery belongs to its worker until then; after a crash another worker takes it.
    lease_seconds: float
    poll_seconds: float
    rotation_overlap_seconds: int
    # Extra PEM CA bundle trusted for webhook TLS (local receivers with a private CA); None: system.
    ca_file: str | None
    # The public API's base URL, for links in payloads; empty: no links.
    public_url: str
    # Finished deliveries (and their attempt logs) are kept this long.
    delivery_retention_days: int

    @classmethod
    def from_env(cls, env: Env | None = None) -> Settings:
        """Reads and checks the settings; raises SettingsError naming the bad variable."""
        env = env or Env()
        environment = env.choice("CVMATCH_ENV", "production", ("local", "test", "staging", "production"))
        spec = env.str("NOTIFIER_RETRY_SCHEDULE", DEFAULT_SCHEDULE)
        cap = env.float("NOTIFIER_RETRY_AFTER_CAP_SECONDS", 3600.0, minimum=0.0)
        try:
            schedule = RetrySchedule.parse(spec, retry_after_cap_s=cap)
        except ValueError as exc:
            raise SettingsError(f"NOTIFIER_RETRY_SCHEDULE: {exc}") from None
        timeout = env.float("NOTIFIER_TIMEOUT_SECONDS", 15.0, minimum=0.1)
        lease = env.float("NOTIFIER_LEASE_SECONDS", 60.0, minimum=0.5)
        if lease <= timeout:
            # A lease shorter than an attempt would let a second worker send the same attempt.
            raise SettingsError("NOTIFIER_LEASE_SECONDS must be longer than NOTIFIER_TIMEOUT_SECONDS")
        return cls(
            common=CommonSettings.from_env("notifier", env, default_port=50054),
            environment=environment,
            egress=EgressPolicy(
                allow_http=env.bool("NOTIFIER_ALLOW_HTTP", False),
                allow_loopback=env.bool("NOTIFIER_ALLOW_LOOPBACK", False),
            ),
            schedule=schedule,
            secrets_key=_secrets_key(env, environment),
            workers=env.int("NOTIFIER_WORKERS", 16, minimum=1, maximum=512),
            endpoint_concurrency=env.int("NOTIFIER_ENDPOINT_CONCURRENCY", 4, minimum=1),
            connect_timeout_seconds=env.float("NOTIFIER_CONNECT_TIMEOUT_SECONDS", 5.0, minimum=0.1),
            timeout_seconds=timeout,
            lease_seconds=lease,
            poll_seconds=env.float("NOTIFIER_POLL_SECONDS", 0.25, minimum=0.01),
            rotation_overlap_seconds=env.int("NOTIFIER_ROTATION_OVERLAP_SECONDS", 86400, minimum=0),
            ca_file=env.optional("NOTIFIER_CA_FILE"),
            public_url=(env.optional("NOTIFIER_PUBLIC_URL") or "").rstrip("/"),
            delivery_retention_days=env.int("NOTIFIER_DELIVERY_RETENTION_DAYS", 30, minimum=1),
        )
