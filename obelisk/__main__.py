"""``python -m obelisk``: the same command line as the ``obelisk`` script."""

import sys

from obelisk.cli import main

sys.exit(main())
