"""Fixtures and helpers shared by the test areas (tests/server, tests/agent, ...): live servers,
Redis and PostgreSQL, the scripted model server, browser pages. `tests/conftest.py` registers the
fixtures; test modules import helpers from here, never from one another."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
"""The repository's root (where `pyproject.toml` is)."""
