"""The notifier's rules without I/O: event names, secrets at rest, payloads, settings."""

from __future__ import annotations

import base64
import datetime as dt
import os
import uuid

import pytest

from cvmatch.notifier import domain
from cvmatch.notifier.config import Settings
from cvmatch.platform.errors import DomainError
from cvmatch.platform.settings import Env, SettingsError


def test_event_names_are_checked_and_normalised() -> None:
    assert domain.normalise_events(["credits.low", " Batch.Completed ", "credits.low"]) == (
        "batch.completed", "credits.low")
    assert domain.normalise_events(["batch.failed", "*"]) == ("*",)
    assert domain.normalise_events(["match.created"]) == ("match.created",)  # SkillSync names are accepted
    for bad in (["batch.exploded"], [], [""]):
        with pytest.raises(DomainError) as err:
            domain.normalise_events(bad)
        assert err.value.reason == "INVALID_INPUT" and err.value.details["field"] == "events"


def test_secret_box_round_trip_is_bound_to_key_and_endpoint() -> None:
    box = domain.SecretBox(os.urandom(32))
    endpoint = uuid.uuid4()
    sealed = box.seal(endpoint, "whsec_abc")
    assert b"whsec_abc" not in sealed
    assert box.open(endpoint, sealed) == "whsec_abc"
    assert box.seal(endpoint, "whsec_abc") != sealed  # a fresh nonce every time
    with pytest.raises(ValueError):
        box.open(uuid.uuid4(), sealed)  # copied onto another endpoint
    with pytest.raises(ValueError):
        domain.SecretBox(os.urandom(32)).open(endpoint, sealed)  # another key


def test_payloads_are_thin_and_ids_stable() -> None:
    event_id = str(uuid.uuid4())
    first = domain.batch_completed(event_id, batch_id="b1", total=3, matched=2, failed=1,
                                   completed_at=dt.datetime(2026, 1, 2, tzinfo=dt.UTC),
                                   public_url="https://api.example.com")
    again = domain.batch_completed(event_id, batch_id="b1", total=3, matched=2, failed=1,
                                   completed_at=dt.datetime(2026, 1, 2, tzinfo=dt.UTC),
                                   public_url="https://api.example.com")
    assert first.id == again.id == domain.message_id_for(event_id) and first.body == again.body
    assert first.to_dict() == {
        "id": first.id, "type": "batch.completed", "timestamp": "2026-01-02T00:00:00.000Z",
        "data": {"batch_job_id": "b1", "status": "completed", "total_candidates": 3, "processed_candidates": 3,
                 "failed_candidates": 1, "link": "https://api.example.com/api/v1/batch-jobs/b1/results"}}
    matched = domain.candidate_matched(event_id, candidate_id="c1", batch_id="b1", score=81.234, verdict="strong")
    assert matched.data == {"candidate_id": "c1", "batch_job_id": "b1", "score": 81.23, "verdict": "strong"}
    assert domain.message_id_for("a") != domain.message_id_for("b")


def test_settings_defaults_are_production_safe() -> None:
    key = base64.b64encode(os.urandom(32)).decode()
    s = Settings.from_env(Env({"NOTIFIER_SECRETS_KEY": key}))
    assert not s.egress.allow_loopback and not s.egress.allow_http
    assert s.schedule.delays_s == (1.0, 2.0, 4.0, 8.0, 16.0) and s.schedule.max_attempts == 6
    days = Settings.from_env(Env({"NOTIFIER_SECRETS_KEY": key, "NOTIFIER_RETRY_SCHEDULE": "5s,5m,30m,2h,1d"}))
    assert days.schedule.delays_s == (5.0, 300.0, 1800.0, 7200.0, 86400.0)
    with pytest.raises(SettingsError, match="NOTIFIER_SECRETS_KEY"):
        Settings.from_env(Env({}))  # production without a key
    with pytest.raises(SettingsError, match="NOTIFIER_RETRY_SCHEDULE"):
        Settings.from_env(Env({"NOTIFIER_SECRETS_KEY": key, "NOTIFIER_RETRY_SCHEDULE": "1,soon"}))
    with pytest.raises(SettingsError, match="LEASE"):
        Settings.from_env(Env({"NOTIFIER_SECRETS_KEY": key, "NOTIFIER_LEASE_SECONDS": "5"}))
