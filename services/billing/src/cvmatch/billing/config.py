"""Settings of the billing service, read once from the environment."""

from __future__ import annotations

from dataclasses import dataclass

from cvmatch.billing.domain import KEY_PREFIX
from cvmatch.platform.settings import CommonSettings, Env, SettingsError

# Only ever accepted with CVMATCH_ENV=local: keys hashed with it are worthless anywhere else.
LOCAL_DEV_PEPPER = "local-development-pepper-not-secret"
MIN_PEPPER_LENGTH = 16


@dataclass(frozen=True)
class Settings:
    """Everything the billing service reads from its environment."""

    common: CommonSettings
    environment: str
    # The secret key of the HMAC that API keys are stored under. Changing it invalidates every key.
    key_pepper: bytes
    key_prefix: str
    # `billing.credits.low` is published when an account's available credits drop below this.
    low_credit_threshold: int

    @classmethod
    def from_env(cls, env: Env | None = None) -> Settings:
        """Reads and checks the settings; raises SettingsError naming the bad variable."""
        env = env or Env()
        environment = env.choice("CVMATCH_ENV", "production", ("local", "test", "staging", "production"))
        pepper = env.optional("BILLING_KEY_PEPPER")
        if pepper is None:
            # Fail fast outside a developer machine: a default pepper would make stored hashes guessable.
            if environment != "local":
                raise SettingsError("BILLING_KEY_PEPPER is required (set CVMATCH_ENV=local for a dev default)")
            pepper = LOCAL_DEV_PEPPER
        if len(pepper) < MIN_PEPPER_LENGTH:
            raise SettingsError(f"BILLING_KEY_PEPPER must be at least {MIN_PEPPER_LENGTH} characters")
        if pepper == LOCAL_DEV_PEPPER and environment not in ("local", "test"):
            raise SettingsError("BILLING_KEY_PEPPER is the public development value; set a real secret")
        return cls(
            common=CommonSettings.from_env("billing", env, default_port=50053),
            environment=environment,
            key_pepper=pepper.encode(),
            key_prefix=KEY_PREFIX,
            low_credit_threshold=env.int("BILLING_LOW_CREDIT_THRESHOLD", 50, minimum=0),
        )
