"""`python -m inhabit` = `inhabit`."""

import sys

from .cli import main

sys.exit(main())
