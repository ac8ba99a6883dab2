"""Schemathesis against `/openapi.json` through the real Envoy: no 5xx, no response outside the document.

The CLI is run as a subprocess (as an integrator would run it) with a fixed seed and a bounded number of
examples per operation, so the run is reproducible and stays within the suite's time budget.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx

from cvmatch.testing.stack import Stack

CHECKS = "not_a_server_error,response_schema_conformance,content_type_conformance,status_code_conformance"


def test_openapi_document_is_served(stack: Stack) -> None:
    r = httpx.get(f"{stack.url}/openapi.json")
    assert r.status_code == 200
    doc = r.json()
    assert doc["openapi"].startswith("3.")
    assert "/api/v1/batch-jobs" in doc["paths"] and "/api/match" in doc["paths"]


def test_schemathesis_finds_no_server_error_or_schema_violation(stack: Stack, api_key: str, tmp_path: Path) -> None:
    schemathesis = Path(sys.executable).with_name("schemathesis")
    done = subprocess.run(
        [str(schemathesis), "run", f"{stack.url}/openapi.json", "--url", stack.url,
         "--checks", CHECKS, "--header", f"X-API-Key: {api_key}",
         "--phases", "examples,coverage,fuzzing", "--max-examples", "15", "--seed", "20261124",
         "--request-timeout", "20", "--workers", "2", "--suppress-health-check", "all",
         "--report", "junit", "--report-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout[-20000:] + done.stderr[-5000:]
