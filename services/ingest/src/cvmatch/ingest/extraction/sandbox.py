"""A pool of long-lived, resource-limited worker processes that run every parser.

Each worker is a separate Python process (``python -m cvmatch.ingest.extraction.worker``) with RLIMIT_AS
set once and RLIMIT_CPU re-armed per task; the parent enforces a wall-clock deadline per task and kills
and replaces a worker that misses it, dies, or answers garbage. A hostile file therefore costs at most
one task's limits and fails alone with ``limits_exceeded`` (or ``parse_error`` when the parser crashed);
the other workers keep serving and the caller's memory holds only the request and the answer.

Workers are reused (imports and process start-up cost ~0.3 s, a two-page PDF ~10 ms), talk over pipes
with length-prefixed frames, and are replaced in the background so a kill does not delay the caller.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
import time
from dataclasses import dataclass, field
from types import TracebackType

from .extract import precheck, sha256_hex
from .limits import ExtractionLimits
from .outcomes import DocumentKind, ExtractedDocument, Outcome
from .protocol import READY, RESPONSE_HEAD, decode_response, encode_limits, encode_request
from .rawtext import RawText

log = logging.getLogger(__name__)

_START_TIMEOUT = 30.0
_RESPAWN_BACKOFF = (0.1, 0.5, 1.0, 2.0, 5.0)
# Signals that mean "a resource limit stopped the parser" rather than "the parser crashed".
_LIMIT_SIGNALS = frozenset({signal.SIGXCPU, signal.SIGKILL})


class PoolClosed(RuntimeError):
    """``extract`` was called on a pool that is not started or already closed."""


@dataclass(eq=False, slots=True)
class _Worker:
    proc: asyncio.subprocess.Process
    tasks: int = 0

    @property
    def pid(self) -> int:
        return self.proc.pid


@dataclass(slots=True)
class PoolStats:
    """Counters for metrics and the benchmark. ``exchange_seconds`` sums the wall time of every
    request/response exchange with a worker (parse time included; waiting for a free worker excluded)."""

    tasks: int = 0
    killed: int = 0
    crashed: int = 0
    recycled: int = 0
    spawned: int = 0
    exchange_seconds: float = 0.0
    by_outcome: dict[str, int] = field(default_factory=dict)


class ExtractionPool:
    """Sandboxed text extraction with an asyncio API.

    Usage::

        async with ExtractionPool(limits, workers=2) as pool:
            doc = await pool.extract("cv.pdf", data)

    ``extract`` may be called concurrently; at most ``workers`` files are parsed at once and the rest
    wait for a free worker.
    """

    def __init__(self, limits: ExtractionLimits | None = None, *, workers: int = 2, python: str | None = None) -> None:
        if workers < 1:
            raise ValueError("workers must be >= 1")
        self.limits = limits or ExtractionLimits()
        self.size = workers
        self.stats = PoolStats()
        self._python = python or sys.executable
        self._limits_arg = encode_limits(self.limits)
        self._idle: asyncio.Queue[_Worker] = asyncio.Queue()
        self._all: set[_Worker] = set()
        self._background: set[asyncio.Task[None]] = set()
        self._started = False
        self._closed = False

    async def __aenter__(self) -> ExtractionPool:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def start(self) -> None:
        """Start all workers and wait until each has imported its parsers."""
        if self._started:
            return
        self._started = True
        workers = await asyncio.gather(*(self._spawn() for _ in range(self.size)))
        for worker in workers:
            self._idle.put_nowait(worker)

    async def close(self) -> None:
        """Stop every worker (close stdin, then kill stragglers) and cancel pending respawns."""
        self._closed = True
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        await asyncio.gather(*(self._stop(w) for w in list(self._all)), return_exceptions=True)

    @property
    def worker_pids(self) -> list[int]:
        """Pids of the live workers (for tests and diagnostics)."""
        return [w.pid for w in self._all]

    async def extract(self, filename: str, data: bytes, content_type: str | None = None) -> ExtractedDocument:
        """Detect the type of ``data`` and extract its text in a sandboxed worker.

        Never raises for bad input: every failure is an outcome on the returned document. Raises
        :class:`PoolClosed` when the pool is not running.
        """
        kind, failed = precheck(filename, data, self.limits, content_type)
        if failed is not None:
            self._count(failed.outcome)
            return failed
        raw = await self.extract_kind(kind, data)
        return ExtractedDocument(raw.outcome, raw.text, kind, raw.message, sha256_hex(data), raw.pages)

    async def extract_kind(self, kind: DocumentKind, data: bytes) -> RawText:
        """Parse ``data`` as an already-detected ``kind`` in a worker (no size or type checks here)."""
        if not self._started or self._closed:
            raise PoolClosed("the extraction pool is not running")
        worker = await self._idle.get()
        while worker.proc.returncode is not None:
            # Died while idle (killed from outside, OOM killer): replace it rather than blame this file.
            self._replace(worker)
            worker = await self._idle.get()
        started = time.perf_counter()
        try:
            result, keep = await self._exchange(worker, kind, data)
        except BaseException:
            # Cancelled mid-exchange: the worker's stream position is unknown, so it cannot be reused.
            self._replace(worker)
            raise
        finally:
            self.stats.exchange_seconds += time.perf_counter() - started
        self.stats.tasks += 1
        self._count(result.outcome)
        worker.tasks += 1
        if keep and worker.tasks < self.limits.max_tasks_per_worker:
            self._idle.put_nowait(worker)
        else:
            if keep:
                self.stats.recycled += 1
            self._replace(worker)
        return result

    def _count(self, outcome: Outcome) -> None:
        self.stats.by_outcome[outcome.value] = self.stats.by_outcome.get(outcome.value, 0) + 1

    async def _exchange(self, worker: _Worker, kind: DocumentKind, data: bytes) -> tuple[RawText, bool]:
        """Send one request and read its answer within the wall-clock limit; ``(result, reusable)``."""
        proc = worker.proc
        assert proc.stdin is not None and proc.stdout is not None
        max_body = self.limits.max_text_chars * 6 + 64 * 1024
        try:
            async with asyncio.timeout(self.limits.wall_seconds):
                proc.stdin.write(encode_request(kind.value, data))
                await proc.stdin.drain()
                head = await proc.stdout.readexactly(RESPONSE_HEAD.size)
                (length,) = RESPONSE_HEAD.unpack(head)
                if length > max_body:
                    raise ValueError("oversized response")
                body = await proc.stdout.readexactly(length)
            result, recycle = decode_response(body)
            return result, not recycle
        except TimeoutError:
            self.stats.killed += 1
            log.warning("extraction worker %d exceeded %.1f s; killing it", worker.pid, self.limits.wall_seconds)
            return RawText(
                Outcome.LIMITS_EXCEEDED,
                message=f"Processing took longer than {self.limits.wall_seconds:g} s.",
            ), False
        except (asyncio.IncompleteReadError, ConnectionError, BrokenPipeError):
            return await self._died(worker), False
        except (ValueError, KeyError, UnicodeDecodeError):
            self.stats.crashed += 1
            return RawText(Outcome.PARSE_ERROR, message=Outcome.PARSE_ERROR.message), False

    async def _died(self, worker: _Worker) -> RawText:
        """Classify a worker that closed its pipe mid-task by how it exited."""
        try:
            code = await asyncio.wait_for(worker.proc.wait(), timeout=5)
        except TimeoutError:
            code = None
        if code is not None and code < 0 and -code in _LIMIT_SIGNALS:
            self.stats.killed += 1
            return RawText(Outcome.LIMITS_EXCEEDED, message="The file exceeded the CPU or memory limit.")
        self.stats.crashed += 1
        log.warning("extraction worker %d died (exit %s)", worker.pid, code)
        return RawText(Outcome.PARSE_ERROR, message="The parser crashed on this file.")

    def _replace(self, worker: _Worker) -> None:
        """Kill ``worker`` and start its successor in the background."""
        self._kill(worker)
        if self._closed:
            return
        task = asyncio.get_running_loop().create_task(self._respawn(worker))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _respawn(self, old: _Worker) -> None:
        with contextlib.suppress(ProcessLookupError, TimeoutError):
            await asyncio.wait_for(old.proc.wait(), timeout=5)
        self._all.discard(old)
        for attempt in range(1_000_000):
            try:
                worker = await self._spawn()
            except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError) as exc:
                delay = _RESPAWN_BACKOFF[min(attempt, len(_RESPAWN_BACKOFF) - 1)]
                log.error("could not start an extraction worker (%s); retrying in %.1f s", exc, delay)
                await asyncio.sleep(delay)
                continue
            if self._closed:
                await self._stop(worker)
            else:
                self._idle.put_nowait(worker)
            return

    async def _spawn(self) -> _Worker:
        proc = await asyncio.create_subprocess_exec(
            self._python,
            "-m",
            "cvmatch.ingest.extraction.worker",
            self._limits_arg,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            # Parser tracebacks could quote document text; the outcome carries what callers need.
            stderr=asyncio.subprocess.DEVNULL,
        )
        worker = _Worker(proc)
        self._all.add(worker)
        self.stats.spawned += 1
        try:
            assert proc.stdout is not None
            ready = await asyncio.wait_for(proc.stdout.readexactly(1), timeout=_START_TIMEOUT)
            if ready != READY:
                raise ValueError("unexpected worker greeting")
        except BaseException:
            self._kill(worker)
            self._all.discard(worker)
            raise
        return worker

    @staticmethod
    def _kill(worker: _Worker) -> None:
        if worker.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                worker.proc.kill()

    async def _stop(self, worker: _Worker) -> None:
        proc = worker.proc
        if proc.returncode is None and proc.stdin is not None:
            proc.stdin.close()
            try:
                await asyncio.wait_for(proc.wait(), timeout=2)
            except TimeoutError:
                self._kill(worker)
                await proc.wait()
        else:
            await proc.wait()
        self._all.discard(worker)
