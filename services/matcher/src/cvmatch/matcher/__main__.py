"""python -m cvmatch.matcher [serve|migrate]"""

from __future__ import annotations

import sys

from cvmatch.matcher.app import MIGRATIONS, load
from cvmatch.platform.cli import main

if __name__ == "__main__":
    sys.exit(main("matcher", load, MIGRATIONS))
