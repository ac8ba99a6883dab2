"""Gateway rules found by an audit, without I/O: integral JSON floats for the sync call's numbers, the
CVDeepMatch PDF type gate, a re-run with nothing new, paging through every result, the sync route's edge
timeouts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
import yaml

from cvmatch.api.ingest.v1 import batch_pb2
from cvmatch.api.ingest.v1 import ingest_service_pb2 as ingest
from cvmatch.api.matcher.v1 import match_result_pb2
from cvmatch.gateway import forms, matching
from cvmatch.gateway.backends import Backends, ResultsPage
from cvmatch.gateway.submitting import _refuse_if_nothing_usable
from cvmatch.platform.errors import DomainError
from cvmatch.testing.edge import render_envoy_config

from .test_uploads import encode, parse

CSV = "candidate_id,name,resume_text\n1,A,B\n"


async def test_sync_accepts_integral_json_floats_and_refuses_fractions() -> None:
    sub, timeout = forms.sync_submission(await parse(*encode(json={
        "input_type": "csv_file", "job_text": "Engineer", "csv_text": CSV, "timeout": 300.0,
        "max_candidates": 50.0})), 1, "r", "")
    assert timeout == 300 and sub.header.max_candidates == 50
    with pytest.raises(DomainError) as exc:
        forms.sync_submission(await parse(*encode(json={
            "input_type": "csv_file", "job_text": "E", "csv_text": CSV, "timeout": 2.5})), 1, "r", "")
    assert [v.field for v in exc.value.violations] == ["timeout"]


async def test_deep_match_refuses_a_cv_without_the_pdf_content_type() -> None:
    for ctype in ("application/octet-stream", "text/plain"):
        form = await parse(*encode({"job_description_text": "Engineer"},
                                   [("cv_file", ("cv.pdf", b"%PDF-1.4 x", ctype))]))
        with pytest.raises(DomainError) as exc:
            forms.deep_match_submission(form, 1, "r", "")
        assert exc.value.reason == "INVALID_INPUT" and exc.value.violations[0].field == "cv_file", ctype
    form = await parse(*encode({"job_description_text": "Engineer"},
                               [("cv_file", ("cv.pdf", b"%PDF-1.4 x", "application/pdf"))]))
    assert [p for p, _ in forms.deep_match_submission(form, 1, "r", "").files] == ["pdf"]


async def test_a_rerun_with_nothing_new_is_accepted_but_nothing_usable_is_refused() -> None:
    form = await parse(*encode({"input_type": "AWS_S3", "job_description_text": "E",
                                "source_config_json": '{"bucket": "b"}'}))
    sub = forms.batch_submission(form, 1, "r", "")
    skipped = ingest.SkippedFile(filename="a.pdf", outcome=batch_pb2.CANDIDATE_OUTCOME_ALREADY_MATCHED, reason="x")
    junk = ingest.SkippedFile(filename="a.png", outcome=batch_pb2.CANDIDATE_OUTCOME_UNSUPPORTED_TYPE, reason="y")
    rerun = ingest.CreateBatchResponse(batch=batch_pb2.Batch(batch_id="b1", total_candidates=2),
                                       skipped_files=[skipped, junk])
    _refuse_if_nothing_usable(sub, rerun)  # accepted: the batch completes with no new result
    nothing = ingest.CreateBatchResponse(batch=batch_pb2.Batch(batch_id="b2", total_candidates=1),
                                         skipped_files=[junk])
    with pytest.raises(DomainError, match="None of the uploaded files"):
        _refuse_if_nothing_usable(sub, nothing)


class _PagedBackends(Backends):
    """ListResults as the matcher pages it: `n` scored results, then ingest's failed candidates."""

    def __init__(self, scored: int, failed: int) -> None:
        self.scored = [match_result_pb2.MatchResult(candidate_id=f"r{i}") for i in range(scored)]
        self.failed = [batch_pb2.Candidate(candidate_id=f"f{i}") for i in range(failed)]

    async def results(self, batch: batch_pb2.Batch, skip: int, limit: int) -> ResultsPage:
        res: Sequence[match_result_pb2.MatchResult] = self.scored[skip:skip + limit]
        room = limit - len(res)
        first = max(0, skip - len(self.scored))
        fails = self.failed[first:first + room] if room > 0 else []
        return ResultsPage("", "", match_result_pb2.SummaryStats(), list(res), fails, len(self.scored))


@pytest.mark.parametrize(("scored", "failed"), [(0, 0), (5, 0), (7, 3), (10, 0), (2505, 4)])
async def test_match_results_are_read_whole_however_many(scored: int, failed: int) -> None:
    backends = _PagedBackends(scored, failed)
    results, failures = await matching.all_results(backends, batch_pb2.Batch(batch_id="b"), page_size=5)
    assert [r.candidate_id for r in results] == [f"r{i}" for i in range(scored)]
    assert [c.candidate_id for c in failures] == [f"f{i}" for i in range(failed)]
    assert len((await matching.all_results(backends, batch_pb2.Batch(batch_id="b")))[0]) == scored


def _route(config: dict[str, Any], path: str) -> dict[str, Any]:
    """The route Envoy picks for an already transcoded gRPC path (first match, as Envoy does)."""
    listener = config["static_resources"]["listeners"][0]
    hcm = listener["filter_chains"][0]["filters"][0]["typed_config"]
    for route in hcm["route_config"]["virtual_hosts"][0]["routes"]:
        m = route["match"]
        if "headers" in m:
            continue
        if m.get("path") == path or ("prefix" in m and path.startswith(m["prefix"])):
            return dict(route["route"])
    raise AssertionError(f"no route for {path}")


def _seconds(value: str) -> float:
    return float(value.removesuffix("s"))


def test_the_edge_never_cuts_a_sync_call_before_its_timeout() -> None:
    config = yaml.safe_load(render_envoy_config(8080, 9901, {"gateway": [("127.0.0.1", 1)]}))
    route = _route(config, "/cvmatch.api.gateway.v1.BatchJobsService/SyncBatch")
    # The gateway answers at most SYNC_MAX_TIMEOUT seconds after the request arrived, silent meanwhile.
    assert _seconds(route["timeout"]) > forms.SYNC_MAX_TIMEOUT + 10
    assert _seconds(route["idle_timeout"]) > forms.SYNC_MAX_TIMEOUT + 10
    other = _route(config, "/cvmatch.api.gateway.v1.BatchJobsService/GetBatchJobStatus")
    assert _seconds(other["idle_timeout"]) <= 300
