"""python -m cvmatch.notifier [serve|migrate]"""

from __future__ import annotations

import sys

from cvmatch.notifier.app import MIGRATIONS, load
from cvmatch.platform.cli import main

if __name__ == "__main__":
    sys.exit(main("notifier", load, MIGRATIONS))
