"""`python -m samizdat` is the `samizdat` command."""

import sys

from samizdat.cli import main

sys.exit(main())
