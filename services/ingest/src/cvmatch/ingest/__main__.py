"""python -m cvmatch.ingest [serve|migrate]"""

from __future__ import annotations

import sys

from cvmatch.ingest.app import MIGRATIONS, load
from cvmatch.platform.cli import main

if __name__ == "__main__":
    sys.exit(main("ingest", load, MIGRATIONS))
