"""Settings of the matcher service, read once from the environment."""

from __future__ import annotations

from dataclasses import dataclass

from cvmatch.platform.settings import CommonSettings, Env, SettingsError

# Candidates of `ingest.candidate.failed` recorded at once (one insert each).
FAILURE_CONCURRENCY = 2
# Connections besides the scoring consumers: a job-profile load, the failure consumer, the outbox relay and
# its listener, the health watch and at least one RPC.
RESERVED_CONNECTIONS = 1 + FAILURE_CONCURRENCY + 2 + 1


@dataclass(frozen=True)
class Settings:
    """Everything the matcher service reads from its environment."""

    common: CommonSettings
    # Where ingest's gRPC API is: job descriptions and candidate texts are fetched from it.
    ingest_addr: str
    ingest_timeout_seconds: float
    # Threads that parse and score; the event loop never runs the engine itself.
    score_workers: int
    # Candidates in flight per replica (fetching, scoring, storing).
    consumer_concurrency: int
    # Parsed job descriptions kept in memory (also stored in `job_profiles`).
    job_cache_size: int
    # ScoreCandidates: the most candidates one call may carry.
    sync_max_candidates: int

    @classmethod
    def from_env(cls, env: Env | None = None) -> Settings:
        """Reads and checks the settings; raises SettingsError naming the bad variable."""
        env = env or Env()
        common = CommonSettings.from_env("matcher", env, default_port=50052)
        concurrency = env.int("MATCHER_CONCURRENCY", 4, minimum=1, maximum=256)
        # Each candidate in flight holds a connection for its transaction (plus one for a job-profile load);
        # the failure consumer, the outbox relay, the health watch and the RPCs need the rest.
        needed = concurrency + RESERVED_CONNECTIONS
        if needed > common.db_pool_max:
            raise SettingsError(
                f"DB_POOL_MAX ({common.db_pool_max}) must be at least MATCHER_CONCURRENCY + {RESERVED_CONNECTIONS}"
                f" ({needed})"
            )
        return cls(
            common=common,
            ingest_addr=env.str("INGEST_ADDR", "127.0.0.1:50051"),
            ingest_timeout_seconds=env.float("MATCHER_INGEST_TIMEOUT_SECONDS", 10.0, minimum=0.1),
            score_workers=env.int("MATCHER_SCORE_WORKERS", 2, minimum=1, maximum=64),
            consumer_concurrency=concurrency,
            job_cache_size=env.int("MATCHER_JOB_CACHE_SIZE", 256, minimum=1),
            sync_max_candidates=env.int("MATCHER_SYNC_MAX_CANDIDATES", 500, minimum=1),
        )
