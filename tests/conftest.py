"""Registers the shared fixtures (tests/support): live servers, cluster services, the browser, the
scripted model server, and the `serial` mark for timing-sensitive tests under pytest-xdist."""

from __future__ import annotations

pytest_plugins = ["support.fixtures", "support.browser", "support.serial", "support.sql_engines"]
