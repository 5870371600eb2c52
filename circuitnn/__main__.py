"""``python -m circuitnn`` is the ``circuitnn`` command."""

import sys

from circuitnn.cli import main

sys.exit(main())
