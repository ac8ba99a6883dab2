"""python -m cvmatch.gateway [serve|migrate]"""

from __future__ import annotations

import sys

from cvmatch.gateway.app import MIGRATIONS, load
from cvmatch.platform.cli import main

if __name__ == "__main__":
    sys.exit(main("gateway", load, MIGRATIONS))
