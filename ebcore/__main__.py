"""`python -m ebcore ...`: the command line (see ebcore.study.cli)."""
import sys

from .study.cli import main

sys.exit(main())
