"""Settings of the ingest service, read once from the environment."""

from __future__ import annotations

from dataclasses import dataclass

from cvmatch.platform.settings import CommonSettings, Env


@dataclass(frozen=True)
class Settings:
    """Everything the ingest service reads from its environment."""

    common: CommonSettings

    @classmethod
    def from_env(cls, env: Env | None = None) -> Settings:
        env = env or Env()
        return cls(common=CommonSettings.from_env("ingest", env, default_port=50051))
