"""`python -m server` = `inhabit`."""

import sys

from .cli import main

sys.exit(main())
