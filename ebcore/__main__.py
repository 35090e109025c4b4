"""`python -m ebcore ...`: the command line (see ebcore.cli)."""
import sys

from .cli import main

sys.exit(main())
