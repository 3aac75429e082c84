"""``python -m teleicu`` runs the CLI."""

import sys

from teleicu.cli import main

sys.exit(main())
