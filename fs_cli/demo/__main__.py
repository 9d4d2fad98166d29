"""`python -m fs_cli.demo` (what `make demo` runs): the guided tour of fs_cli.demo.tour."""

import sys

from .tour import main

sys.exit(main())
