"""Operator commands: `python -m cvmatch.billing admin <command>` and `bootstrap-local`.

They talk to the billing schema directly (the operator runs them next to the service, with its
environment), print one JSON document on stdout, and exit non-zero with the error on stderr.
A key's secret is printed once, at creation; it cannot be shown again.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime as dt
import enum
import json
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from cvmatch.billing import domain
from cvmatch.billing.app import MIGRATIONS
from cvmatch.billing.config import Settings
from cvmatch.billing.repository import Repository
from cvmatch.platform.db import create_pool, migrate
from cvmatch.platform.errors import DomainError
from cvmatch.platform.settings import SettingsError

LOCAL_ACCOUNT = "local"
LOCAL_CREDITS = 1_000


def _jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(v) for v in (sorted(value) if isinstance(value, set | frozenset) else value)]
    return value


def _balance(b: domain.Balance) -> dict[str, int]:
    return {"available": b.available, "held": b.held, "captured": b.captured, "granted": b.granted}


def _print(doc: dict[str, Any]) -> None:
    print(json.dumps(_jsonable(doc), indent=2))


def _expiry(raw: str | None) -> dt.datetime | None:
    if not raw:
        return None
    when = dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


async def create_account(repo: Repository, args: argparse.Namespace) -> None:
    """Creates an account with initial credits."""
    plan = domain.parse_plan(args.plan)
    account = await repo.create_account(args.name, plan, domain.limits_for(plan), args.credits)
    _print({"account": account, "balance": _balance(await repo.balance(account.account_id))})


async def create_key(repo: Repository, args: argparse.Namespace) -> None:
    """Creates a key and prints its secret (once)."""
    scopes = domain.validate_scopes(s for s in args.scopes.split(",") if s.strip())
    key, secret = await repo.create_key(args.account, args.name, scopes, _expiry(args.expires))
    _print({"api_key": key, "secret": secret})


async def revoke_key(repo: Repository, args: argparse.Namespace) -> None:
    """Revokes a key."""
    _print({"api_key": await repo.revoke_key(args.account, args.key_id)})


async def grant(repo: Repository, args: argparse.Namespace) -> None:
    """Grants a credit pack (price recorded) or an explicit number of credits."""
    if args.pack is not None:
        credits, price = domain.credit_pack(args.pack)
        note = args.note or f"credit pack {credits} (${price / 100:.2f})"
    elif args.credits is not None and args.credits > 0:
        credits, price, note = args.credits, args.price_cents, args.note or "admin grant"
    else:
        raise domain.InvalidValue("pack", "give --pack or a positive --credits")
    bal = await repo.grant(args.account, credits, price, note, args.grant_id)
    _print({"account_id": args.account, "granted": credits, "price_cents": price, "balance": _balance(bal)})


async def set_plan(repo: Repository, args: argparse.Namespace) -> None:
    """Changes an account's plan (Custom takes the five limits)."""
    plan = domain.parse_plan(args.plan)
    custom = None
    if plan is domain.Plan.CUSTOM:
        custom = domain.PlanLimits(args.rpm or 0, args.rpd or 0, args.burst or 0, args.concurrency or 0,
                                   args.max_cvs or 0)
    _print({"account": await repo.set_plan(args.account, plan, domain.limits_for(plan, custom))})


async def balance(repo: Repository, args: argparse.Namespace) -> None:
    """Prints the cached and the recomputed balance (they must be equal)."""
    cached, ledger = await repo.balance(args.account), await repo.recompute_balance(args.account)
    _print({"account_id": args.account, "balance": _balance(cached), "recomputed": _balance(ledger),
            "consistent": cached == ledger})


async def bootstrap_local(repo: Repository, args: argparse.Namespace) -> None:
    """Creates the local account if absent and a new admin key; prints `CVMATCH_API_KEY=...`.

    Secrets are not stored, so an existing key cannot be shown again: each run issues a fresh key
    (earlier ones stay valid), which keeps `make run` able to write a working key every time.
    """
    account = await repo.find_account(args.name)
    created = account is None
    if account is None:
        plan = domain.parse_plan(args.plan)
        account = await repo.create_account(args.name, plan, domain.limits_for(plan), args.credits)
    _, secret = await repo.create_key(account.account_id, "local admin", ("admin", "match:execute"), None)
    print(f"CVMATCH_API_KEY={secret}")
    print(json.dumps({"account_id": account.account_id, "created": created}), file=sys.stderr)


Command = Callable[[Repository, argparse.Namespace], Awaitable[None]]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m cvmatch.billing admin")
    sub = p.add_subparsers(dest="command", required=True)

    c = sub.add_parser("create-account")
    c.add_argument("--name", required=True)
    c.add_argument("--plan", default="free")
    c.add_argument("--credits", type=int, default=0)
    c.set_defaults(run=create_account)

    c = sub.add_parser("create-key")
    c.add_argument("--account", type=int, required=True)
    c.add_argument("--scopes", default=",".join(domain.DEFAULT_SCOPES))
    c.add_argument("--name", default="API key")
    c.add_argument("--expires", help="RFC 3339 time, e.g. 2026-12-31T23:59:59Z")
    c.set_defaults(run=create_key)

    c = sub.add_parser("revoke-key")
    c.add_argument("--account", type=int, required=True)
    c.add_argument("--key-id", required=True)
    c.set_defaults(run=revoke_key)

    c = sub.add_parser("grant")
    c.add_argument("--account", type=int, required=True)
    c.add_argument("--pack", type=int, help="100, 500 or 1000")
    c.add_argument("--credits", type=int)
    c.add_argument("--price-cents", type=int, default=0)
    c.add_argument("--grant-id", help="makes the grant idempotent (e.g. an invoice number)")
    c.add_argument("--note", default="")
    c.set_defaults(run=grant)

    c = sub.add_parser("set-plan")
    c.add_argument("--account", type=int, required=True)
    c.add_argument("--plan", required=True)
    for flag in ("--rpm", "--rpd", "--burst", "--concurrency", "--max-cvs"):
        c.add_argument(flag, type=int, help="Custom plans only")
    c.set_defaults(run=set_plan)

    c = sub.add_parser("balance")
    c.add_argument("--account", type=int, required=True)
    c.set_defaults(run=balance)

    c = sub.add_parser("bootstrap-local")
    c.add_argument("--name", default=LOCAL_ACCOUNT)
    c.add_argument("--credits", type=int, default=LOCAL_CREDITS)
    # Enterprise, so a developer's manual testing is not throttled at 60 requests per minute.
    c.add_argument("--plan", default="enterprise")
    c.set_defaults(run=bootstrap_local)
    return p


async def _run(settings: Settings, command: Command, args: argparse.Namespace) -> None:
    if command is bootstrap_local:
        # `make run` calls this right after starting the stack: make sure the schema exists.
        await migrate(settings.common, MIGRATIONS)
    pool = await create_pool(settings.common)
    try:
        repo = Repository(pool, pepper=settings.key_pepper, key_prefix=settings.key_prefix,
                          low_credit_threshold=settings.low_credit_threshold)
        await command(repo, args)
    finally:
        await pool.close()


def main(argv: Sequence[str]) -> int:
    """Runs one admin command; returns the exit status."""
    args = _parser().parse_args(list(argv))
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"cvmatch-billing: configuration error: {exc}", file=sys.stderr)
        return 2
    try:
        asyncio.run(_run(settings, args.run, args))
    except domain.InvalidValue as exc:
        print(f"error: {exc.field}: {exc.message}", file=sys.stderr)
        return 2
    except DomainError as exc:
        print(f"error: {exc.reason}: {exc.message}", file=sys.stderr)
        return 1
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0

