"""Retry schedule decisions and the thin payload builder (pure, no I/O)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from cvmatch.notifier.webhooks import (
    AttemptResult,
    Outcome,
    PayloadError,
    RetrySchedule,
    batch_event,
    build_event,
    dumps,
    new_message_id,
)


def result(status: int | None, retry_after: float | None = None) -> AttemptResult:
    return AttemptResult(
        status_code=status,
        latency_ms=5,
        error=None if status else "timeout",
        retry_after_s=retry_after,
        gone=status == 410,
    )


def test_default_schedule_is_the_seeds() -> None:
    schedule = RetrySchedule()
    assert schedule.max_attempts == 6
    failure = result(500)
    delays = [schedule.decide(n, failure).delay_s for n in range(1, 6)]
    assert delays == [1, 2, 4, 8, 16]
    assert schedule.decide(6, failure).outcome is Outcome.FAILED


@pytest.mark.parametrize("status", [None, 302, 400, 401, 404, 429, 500, 502, 503])
def test_every_other_failure_is_retried(status: int | None) -> None:
    decision = RetrySchedule().decide(1, result(status))
    assert (decision.outcome, decision.delay_s) == (Outcome.RETRY, 1.0)


@pytest.mark.parametrize("status", [200, 201, 202, 204])
def test_2xx_is_delivered(status: int) -> None:
    assert RetrySchedule().decide(6, result(status)).outcome is Outcome.DELIVERED


def test_410_disables_the_endpoint() -> None:
    decision = RetrySchedule().decide(1, result(410))
    assert decision.outcome is Outcome.ENDPOINT_GONE and decision.disable_endpoint


def test_retry_after_is_honoured_up_to_the_cap() -> None:
    schedule = RetrySchedule(retry_after_cap_s=60)
    assert schedule.decide(1, result(429, 30)).delay_s == 30
    assert schedule.decide(1, result(503, 7200)).delay_s == 60
    assert schedule.decide(3, result(503, 0)).delay_s == 4  # never shorter than the schedule
    assert schedule.decide(1, result(500, 30)).delay_s == 1  # only on 429 / 503
    assert schedule.decide(6, result(429, 30)).outcome is Outcome.FAILED  # does not add attempts


def test_configurable_schedules() -> None:
    days = RetrySchedule.parse("5s, 5m, 30m, 2h, 5h, 10h, 1d, 1d")
    assert days.delays_s == (5, 300, 1800, 7200, 18000, 36000, 86400, 86400)
    assert days.max_attempts == 9
    assert sum(days.delays_s) > 2 * 86400
    assert RetrySchedule.parse("1,2,4,8,16") == RetrySchedule()
    assert RetrySchedule.parse("50ms,0.1").delays_s == (0.05, 0.1)
    assert RetrySchedule.of([]).decide(1, result(500)).outcome is Outcome.FAILED
    for bad in ["", "1,,2", "-1", "5x"]:
        with pytest.raises(ValueError):
            RetrySchedule.parse(bad)
    with pytest.raises(ValueError):
        RetrySchedule().delay_after(0)


def test_batch_event_is_thin_and_deterministic() -> None:
    when = datetime(2025, 1, 20, 10, 42, tzinfo=timezone(timedelta(hours=2)))
    event = batch_event(
        "batch.completed",
        batch_job_id="bj_123",
        status="completed",
        total_candidates=10,
        processed_candidates=9,
        failed_candidates=1,
        average_score=71.5,
        top_score=93.0,
        link="https://cvmatch.example.com/api/v1/batch-jobs/bj_123/results",
        event_id="msg_1",
        occurred_at=when,
    )
    assert event.body == (
        b'{"data":{"average_score":71.5,"batch_job_id":"bj_123","failed_candidates":1,'
        b'"link":"https://cvmatch.example.com/api/v1/batch-jobs/bj_123/results","processed_candidates":9,'
        b'"status":"completed","top_score":93.0,"total_candidates":10},"id":"msg_1",'
        b'"timestamp":"2025-01-20T08:42:00.000Z","type":"batch.completed"}'
    )
    assert json.loads(event.body)["data"]["batch_job_id"] == "bj_123"
    assert event.body == event.body  # same bytes every time: same signature on every attempt


def test_build_event_defaults() -> None:
    event = build_event("batch.failed", {"batch_job_id": "bj_1", "counts": {"failed": 3}, "ids": ["a", "b"]})
    assert event.id.startswith("msg_") and event.timestamp.endswith("Z")
    assert datetime.fromisoformat(event.timestamp.replace("Z", "+00:00")) <= datetime.now(UTC)
    assert new_message_id() != new_message_id()


@pytest.mark.parametrize(
    "data",
    [
        {"cv_text": "John Smith, 10 years of Python"},
        {"candidate": {"first_name": "John"}},
        {"email": "john@example.com"},
        {"filename": "john_smith_cv.pdf"},
        {"summary": "x"},
        {"note": "x" * 513},
        {"note": "line\nbreak"},
        {"score": float("nan")},
        {"Bad-Key": 1},
        {"blob": b"bytes"},
        {"a": {"b": {"c": {"d": 1}}}},
        {"ids": list(range(101))},
    ],
)
def test_payload_refuses_text_personal_data_and_non_json(data: dict[str, object]) -> None:
    with pytest.raises(PayloadError):
        build_event("batch.completed", data)  # type: ignore[arg-type]


@pytest.mark.parametrize("event_type", ["completed", "Batch.Completed", "batch..completed", ""])
def test_event_types(event_type: str) -> None:
    with pytest.raises(PayloadError):
        build_event(event_type, {})


def test_naive_timestamps_are_refused() -> None:
    with pytest.raises(PayloadError):
        build_event("batch.completed", {}, occurred_at=datetime(2025, 1, 1))


def test_dumps_is_compact_and_sorted() -> None:
    assert dumps({"b": 1, "a": [1, 2], "é": "ü"}) == '{"a":[1,2],"b":1,"é":"ü"}'.encode()
    with pytest.raises(PayloadError):
        dumps({"x": float("inf")})
