"""Pure rules: key format and hashing, scopes, plans, packs, balance arithmetic."""

from __future__ import annotations

import pytest

from cvmatch.billing import domain
from cvmatch.billing.domain import Plan, PlanLimits


def test_generated_keys_are_prefixed_unique_and_well_formed() -> None:
    keys = {domain.generate_key().secret for _ in range(200)}
    assert len(keys) == 200
    for k in keys:
        assert k.startswith("cvm_live_") and len(k) == 45
        assert domain.well_formed(k)


def test_checksum_rejects_typos_and_truncation() -> None:
    key = domain.generate_key().secret
    body = key[len("cvm_live_"):]
    for i in range(len(body)):
        c = body[i]
        typo = "a" if c != "a" else "b"
        assert not domain.well_formed("cvm_live_" + body[:i] + typo + body[i + 1:])
    assert not domain.well_formed(key[:-1])
    assert not domain.well_formed(key + "x")
    assert not domain.well_formed("sk_live_" + body)
    assert not domain.well_formed("")


def test_display_prefix_is_not_the_secret() -> None:
    new = domain.generate_key()
    assert new.secret.startswith(new.display_prefix)
    assert len(new.display_prefix) == len("cvm_live_") + domain.DISPLAY_CHARS


def test_hash_is_keyed() -> None:
    assert domain.hash_key(b"a" * 16, "k") != domain.hash_key(b"b" * 16, "k")
    assert domain.hash_key(b"a" * 16, "k") == domain.hash_key(b"a" * 16, "k")
    assert len(domain.hash_key(b"a" * 16, "k")) == 32


def test_scope_implication() -> None:
    assert domain.has_scope(["match:execute"], "match:read")
    assert not domain.has_scope(["match:read"], "match:execute")
    assert not domain.has_scope(["match:execute"], "cvdeepmatch")
    assert domain.has_scope(["cvdeepmatch"], "cvdeepmatch")
    assert domain.has_scope(["profiles:write"], "profiles:read")
    assert domain.has_scope(["messages:read"], "")
    for scope in domain.SCOPES:
        assert domain.has_scope(["admin"], scope)
    assert not domain.has_scope(["admin"], "made:up")


def test_scope_validation() -> None:
    assert domain.validate_scopes([]) == ("match:execute",)
    assert domain.validate_scopes(["matches:read", "matches:read", "profiles:write"]) == (
        "matches:read", "profiles:write")
    with pytest.raises(domain.InvalidValue):
        domain.validate_scopes(["match:everything"])


def test_plan_limits_from_the_seeds() -> None:
    assert domain.limits_for(Plan.FREE) == PlanLimits(60, 1_000, 100, 5, 10)
    pro, ent = domain.limits_for(Plan.PRO), domain.limits_for(Plan.ENTERPRISE)
    assert (pro.requests_per_minute, pro.requests_per_day, pro.burst, pro.concurrent_requests) == (300, 10_000, 500, 20)
    assert (ent.requests_per_minute, ent.requests_per_day, ent.burst, ent.concurrent_requests) == (
        1_000, 50_000, 2_000, 100)
    assert domain.limits_for(Plan.STARTER).max_cvs_per_job == 20
    assert domain.limits_for(Plan.API).max_cvs_per_job == 25
    with pytest.raises(domain.InvalidValue):
        domain.limits_for(Plan.CUSTOM)
    with pytest.raises(domain.InvalidValue):
        domain.limits_for(Plan.CUSTOM, PlanLimits(0, 1, 1, 1, 1))
    assert domain.limits_for(Plan.CUSTOM, PlanLimits(5, 6, 7, 8, 9)) == PlanLimits(5, 6, 7, 8, 9)
    assert domain.parse_plan(" Pro ") is Plan.PRO


def test_credit_packs() -> None:
    assert domain.credit_pack(100) == (100, 100)
    assert domain.credit_pack(500) == (500, 400)
    assert domain.credit_pack(1000) == (1000, 700)
    with pytest.raises(domain.InvalidValue):
        domain.credit_pack(200)


def test_balance_arithmetic_and_low_crossing() -> None:
    b = domain.Balance(granted=100, reserved=30, captured=10, released=5)
    assert b.available == 75 and b.held == 15
    assert domain.crosses_low(10, 4, 5) and not domain.crosses_low(4, 3, 5) and not domain.crosses_low(10, 5, 5)
