"""``python -m longbench`` runs the command line."""

import sys

from longbench.cli import main

sys.exit(main())
