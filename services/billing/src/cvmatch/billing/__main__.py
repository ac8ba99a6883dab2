"""python -m cvmatch.billing [serve [--migrate]|migrate|bootstrap-local|admin <command> ...]"""

from __future__ import annotations

import sys

from cvmatch.billing.app import MIGRATIONS, load
from cvmatch.platform.cli import main


def run(argv: list[str]) -> int:
    """Dispatches operator commands here and `serve`/`migrate` to the platform's entry point."""
    if argv[:1] == ["admin"]:
        from cvmatch.billing import admin

        return admin.main(argv[1:])
    if argv[:1] == ["bootstrap-local"]:
        from cvmatch.billing import admin

        return admin.main(argv)
    return main("billing", load, MIGRATIONS, argv)


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
