"""The composition root: the `inhabit` command and the assembly of the app from its parts.

The only package that imports both the rooms server and the agent; nothing imports it.
"""

__version__ = "0.1.0"
"""The package's version (pyproject reads it from here; `inhabit --version` prints it)."""
