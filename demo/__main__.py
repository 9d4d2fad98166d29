"""`python -m demo` (what `make demo` runs, from the repository's root): the guided tour of demo.tour."""

import sys

from .tour import main

sys.exit(main())
