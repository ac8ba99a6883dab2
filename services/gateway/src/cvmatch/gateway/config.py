"""Settings of the gateway, read once from the environment."""

from __future__ import annotations

from dataclasses import dataclass

from cvmatch.platform.settings import CommonSettings, Env


@dataclass(frozen=True)
class Settings:
    """Where the internal services are, and the edge's limits."""

    common: CommonSettings
    ingest_addr: str
    matcher_addr: str
    billing_addr: str
    notifier_addr: str
    auth_cache_seconds: float
    max_request_bytes: int
    max_file_bytes: int

    @classmethod
    def from_env(cls, env: Env | None = None) -> Settings:
        env = env or Env()
        return cls(
            common=CommonSettings.from_env("gateway", env, default_port=50050),
            ingest_addr=env.str("INGEST_ADDR", "127.0.0.1:50051"),
            matcher_addr=env.str("MATCHER_ADDR", "127.0.0.1:50052"),
            billing_addr=env.str("BILLING_ADDR", "127.0.0.1:50053"),
            notifier_addr=env.str("NOTIFIER_ADDR", "127.0.0.1:50054"),
            # Revocation must reach every gateway within two seconds: keep the cache well under that.
            auth_cache_seconds=env.float("AUTH_CACHE_SECONDS", 1.0, minimum=0.0),
            max_request_bytes=env.int("MAX_REQUEST_BYTES", 100 * 1024 * 1024, minimum=1024),
            max_file_bytes=env.int("MAX_FILE_BYTES", 5 * 1024 * 1024, minimum=1024),
        )
