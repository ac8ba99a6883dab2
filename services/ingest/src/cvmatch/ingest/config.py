"""Settings of the ingest service, read once from the environment."""

from __future__ import annotations

from dataclasses import dataclass

from cvmatch.ingest.extraction import ExtractionLimits
from cvmatch.ingest.sources.settings import SourceSettings
from cvmatch.platform.settings import CommonSettings, Env, SettingsError

_MB = 1024 * 1024


@dataclass(frozen=True)
class Settings:
    """Everything the ingest service reads from its environment."""

    common: CommonSettings
    #: Where billing answers ReserveCredits / ReleaseCredits.
    billing_addr: str
    #: Per-file, archive, CSV and sandbox limits (every parse runs under these).
    limits: ExtractionLimits
    #: Largest CreateBatch stream (every part together), in bytes; more is 413.
    max_request_bytes: int
    #: Longest job description, in characters (the seeds publish 50,000).
    max_job_description_chars: int
    #: Sandboxed extraction processes (each parses one file at a time).
    extraction_processes: int
    #: In-process workers that claim spooled candidates.
    workers: int
    #: How long a worker's claim on a candidate holds; a crashed worker's claim is retaken after it.
    lease_seconds: float
    #: Extraction attempts before a candidate that keeps failing its worker gets `parse_error`.
    max_attempts: int
    #: How often an idle worker looks for spooled candidates (a new batch also wakes it at once).
    worker_poll_seconds: float
    #: How often the reconciler runs.
    reconcile_interval_seconds: float
    #: A candidate INGESTED (or a batch without progress) for longer than this is re-driven.
    stuck_seconds: float
    #: Times a stuck candidate is published again before it gets `match_failed` (its batch then settles).
    max_republishes: int
    #: A submission still being admitted after this long was abandoned by a crash: its credits are released.
    admission_timeout_seconds: float
    #: How long an idempotency key is remembered per account.
    idempotency_ttl_seconds: float
    #: How long JetStream waits for our ack of a matcher event before redelivering it (a crashed
    #: replica's unacked verdicts come back after this). Applied when the durable consumer is created.
    event_ack_wait_seconds: float
    #: S3 / Google Drive / database sources (``INGEST_SOURCE_*``; the per-file limit is ``limits.max_file_bytes``).
    sources: SourceSettings
    #: Largest total of bytes read from one remote source at submission (it is held, then spooled, like an
    #: upload request); a listing whose sizes add up to more is 413, content found past it while reading is
    #: reported per item as `limits_exceeded`.
    max_source_bytes: int

    @classmethod
    def from_env(cls, env: Env | None = None) -> Settings:
        """Reads and checks the settings; raises SettingsError naming the bad variable."""
        env = env or Env()
        limits = ExtractionLimits(
            max_file_bytes=env.int("INGEST_MAX_FILE_BYTES", 5 * _MB, minimum=1),
            max_archive_bytes=env.int("INGEST_MAX_ARCHIVE_BYTES", 100 * _MB, minimum=1),
            max_archive_entries=env.int("INGEST_MAX_ARCHIVE_ENTRIES", 2000, minimum=1),
            max_archive_total_uncompressed=env.int("INGEST_MAX_ARCHIVE_UNCOMPRESSED_BYTES", 500 * _MB, minimum=1),
            max_compression_ratio=env.float("INGEST_MAX_COMPRESSION_RATIO", 100.0, minimum=1.0),
            max_csv_bytes=env.int("INGEST_MAX_CSV_BYTES", 50 * _MB, minimum=1),
            max_csv_field_chars=env.int("INGEST_MAX_CSV_FIELD_CHARS", 1 * _MB, minimum=1),
            max_csv_rows=env.int("INGEST_MAX_CSV_ROWS", 10_000, minimum=1),
            cpu_seconds=env.int("INGEST_EXTRACT_CPU_SECONDS", 10, minimum=1),
            memory_bytes=env.int("INGEST_EXTRACT_MEMORY_BYTES", 512 * _MB, minimum=64 * _MB),
            wall_seconds=env.float("INGEST_EXTRACT_WALL_SECONDS", 20.0, minimum=0.5),
        )
        settings = cls(
            common=CommonSettings.from_env("ingest", env, default_port=50051),
            billing_addr=env.str("BILLING_ADDR", "127.0.0.1:50053"),
            limits=limits,
            max_request_bytes=env.int("INGEST_MAX_REQUEST_BYTES", 100 * _MB, minimum=1),
            max_job_description_chars=env.int("INGEST_MAX_JOB_DESCRIPTION_CHARS", 50_000, minimum=1),
            extraction_processes=env.int("INGEST_EXTRACTION_PROCESSES", 2, minimum=1, maximum=64),
            workers=env.int("INGEST_WORKERS", 4, minimum=1, maximum=256),
            lease_seconds=env.float("INGEST_LEASE_SECONDS", 120.0, minimum=0.1),
            max_attempts=env.int("INGEST_MAX_ATTEMPTS", 3, minimum=1),
            worker_poll_seconds=env.float("INGEST_WORKER_POLL_SECONDS", 1.0, minimum=0.01),
            reconcile_interval_seconds=env.float("INGEST_RECONCILE_INTERVAL_SECONDS", 30.0, minimum=0.05),
            stuck_seconds=env.float("INGEST_STUCK_SECONDS", 600.0, minimum=0.05),
            max_republishes=env.int("INGEST_MAX_REPUBLISHES", 6, minimum=0),
            admission_timeout_seconds=env.float("INGEST_ADMISSION_TIMEOUT_SECONDS", 900.0, minimum=0.05),
            idempotency_ttl_seconds=env.float("INGEST_IDEMPOTENCY_TTL_SECONDS", 24 * 3600.0, minimum=1.0),
            event_ack_wait_seconds=env.float("INGEST_EVENT_ACK_WAIT_SECONDS", 30.0, minimum=1.0),
            sources=SourceSettings.from_env(env, max_file_bytes=limits.max_file_bytes),
            max_source_bytes=env.int("INGEST_SOURCE_MAX_TOTAL_BYTES", 100 * _MB, minimum=1),
        )
        # The lease must outlive one extraction, or a slow but healthy worker's file is retaken mid-parse.
        if settings.lease_seconds < limits.wall_seconds:
            raise SettingsError("INGEST_LEASE_SECONDS must be >= INGEST_EXTRACT_WALL_SECONDS")
        return settings
