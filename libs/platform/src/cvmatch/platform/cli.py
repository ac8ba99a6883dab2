"""The `python -m cvmatch.<service> [serve|migrate]` entry point shared by every service."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Callable
from pathlib import Path

from cvmatch.platform.db import migrate
from cvmatch.platform.logging import configure_logging
from cvmatch.platform.server import ServiceSpec, serve
from cvmatch.platform.settings import CommonSettings, SettingsError


def main(name: str, load: Callable[[], tuple[CommonSettings, ServiceSpec]], migrations: Path | None,
         argv: list[str] | None = None) -> int:
    """Parses the command, reads settings once, and runs it."""
    args = sys.argv[1:] if argv is None else argv
    command = args[0] if args else "serve"
    try:
        settings, spec = load()
    except SettingsError as exc:
        print(f"cvmatch-{name}: configuration error: {exc}", file=sys.stderr)
        return 2
    if command == "migrate":
        configure_logging(name, settings.log_level)
        if migrations is None:
            logging.getLogger(name).info("no schema to migrate")
            return 0
        applied = asyncio.run(migrate(settings, migrations))
        logging.getLogger(name).info("migrations done", extra={"applied": applied})
        return 0
    if command == "serve":
        if migrations is not None and "--migrate" in args:
            configure_logging(name, settings.log_level)
            asyncio.run(migrate(settings, migrations))
        asyncio.run(serve(settings, spec))
        return 0
    print(f"usage: python -m cvmatch.{name} [serve [--migrate]|migrate]", file=sys.stderr)
    return 2
