"""``python -m depara_core``: the command line (see :mod:`depara_core.cli`)."""

import sys

from depara_core.cli import main

if __name__ == "__main__":
    sys.exit(main())
