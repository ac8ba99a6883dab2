"""Typed settings read once from the environment.

Each service builds a frozen dataclass with `from_env()` at start-up and passes it down; nothing deeper
reads `os.environ`. A bad value fails the process immediately with the variable's name.
"""

from __future__ import annotations

import builtins
import os
from collections.abc import Mapping
from dataclasses import dataclass


class SettingsError(ValueError):
    """A configuration value is missing or malformed."""


class Env:
    """Typed accessors over an environment mapping (os.environ by default)."""

    def __init__(self, environ: Mapping[builtins.str, builtins.str] | None = None) -> None:
        self._env = os.environ if environ is None else environ

    def str(self, name: builtins.str, default: builtins.str | None = None) -> builtins.str:
        value = self._env.get(name)
        if value is None or value == "":
            if default is None:
                raise SettingsError(f"{name} is required")
            return default
        return value

    def optional(self, name: builtins.str) -> builtins.str | None:
        value = self._env.get(name)
        return value if value else None

    def int(self, name: builtins.str, default: builtins.int, *, minimum: builtins.int | None = None,
            maximum: builtins.int | None = None) -> builtins.int:
        raw = self._env.get(name)
        if raw is None or raw == "":
            return default
        try:
            value = builtins.int(raw)
        except ValueError:
            raise SettingsError(f"{name} must be an integer, got {raw!r}") from None
        if minimum is not None and value < minimum:
            raise SettingsError(f"{name} must be >= {minimum}, got {value}")
        if maximum is not None and value > maximum:
            raise SettingsError(f"{name} must be <= {maximum}, got {value}")
        return value

    def float(self, name: builtins.str, default: builtins.float, *,
              minimum: builtins.float | None = None) -> builtins.float:
        raw = self._env.get(name)
        if raw is None or raw == "":
            return default
        try:
            value = builtins.float(raw)
        except ValueError:
            raise SettingsError(f"{name} must be a number, got {raw!r}") from None
        if minimum is not None and value < minimum:
            raise SettingsError(f"{name} must be >= {minimum}, got {value}")
        return value

    def bool(self, name: builtins.str, default: builtins.bool) -> builtins.bool:
        raw = self._env.get(name)
        if raw is None or raw == "":
            return default
        lowered = raw.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise SettingsError(f"{name} must be a boolean (true/false), got {raw!r}")

    def choice(self, name: builtins.str, default: builtins.str, choices: tuple[builtins.str, ...]) -> builtins.str:
        value = self.str(name, default)
        if value not in choices:
            raise SettingsError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
        return value

    def floats(self, name: builtins.str, default: tuple[builtins.float, ...]) -> tuple[builtins.float, ...]:
        raw = self._env.get(name)
        if raw is None or raw == "":
            return default
        try:
            return tuple(builtins.float(p) for p in raw.split(",") if p.strip())
        except ValueError:
            raise SettingsError(f"{name} must be a comma-separated list of numbers, got {raw!r}") from None


@dataclass(frozen=True)
class CommonSettings:
    """What every service needs: identity, listen address, database, broker, logging, shutdown."""

    service: str
    grpc_host: str
    grpc_port: int
    database_url: str | None
    db_schema: str
    db_role: str
    db_pool_min: int
    db_pool_max: int
    nats_url: str
    log_level: str
    shutdown_grace_seconds: float
    max_deliveries: int
    health_check_interval_seconds: float
    outbox_poll_seconds: float

    @classmethod
    def from_env(cls, service: str, env: Env | None = None, default_port: int = 50051) -> CommonSettings:
        env = env or Env()
        prefix = service.upper()
        return cls(
            service=service,
            grpc_host=env.str(f"{prefix}_GRPC_HOST", env.str("GRPC_HOST", "127.0.0.1")),
            grpc_port=env.int(f"{prefix}_GRPC_PORT", env.int("GRPC_PORT", default_port, minimum=0, maximum=65535),
                              minimum=0, maximum=65535),
            database_url=env.optional(f"{prefix}_DATABASE_URL") or env.optional("DATABASE_URL"),
            db_schema=env.str(f"{prefix}_DB_SCHEMA", service),
            db_role=env.str(f"{prefix}_DB_ROLE", f"cvmatch_{service}"),
            db_pool_min=env.int("DB_POOL_MIN", 1, minimum=0),
            db_pool_max=env.int("DB_POOL_MAX", 10, minimum=1),
            nats_url=env.str("NATS_URL", "nats://127.0.0.1:4222"),
            log_level=env.choice("LOG_LEVEL", "INFO", ("DEBUG", "INFO", "WARNING", "ERROR")),
            shutdown_grace_seconds=env.float("SHUTDOWN_GRACE_SECONDS", 5.0, minimum=0.0),
            max_deliveries=env.int("EVENT_MAX_DELIVERIES", 5, minimum=1),
            health_check_interval_seconds=env.float("HEALTH_CHECK_INTERVAL_SECONDS", 1.0, minimum=0.05),
            outbox_poll_seconds=env.float("OUTBOX_POLL_SECONDS", 0.2, minimum=0.01),
        )

    def require_database_url(self) -> str:
        """The database URL, for services that own a schema; fails fast when it is not set."""
        if not self.database_url:
            raise SettingsError(f"{self.service.upper()}_DATABASE_URL or DATABASE_URL is required")
        return self.database_url
