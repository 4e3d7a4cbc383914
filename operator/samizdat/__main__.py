"""`python -m samizdat` is the `samizdat` command."""

import sys

from samizdat.app.cli import main

sys.exit(main())
