"""Settings of the matcher service, read once from the environment."""

from __future__ import annotations

from dataclasses import dataclass

from cvmatch.platform.settings import CommonSettings, Env


@dataclass(frozen=True)
class Settings:
    """Everything the matcher service reads from its environment."""

    common: CommonSettings

    @classmethod
    def from_env(cls, env: Env | None = None) -> Settings:
        env = env or Env()
        return cls(common=CommonSettings.from_env("matcher", env, default_port=50052))
