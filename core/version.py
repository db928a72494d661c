"""Jobline's version, as installed (pyproject.toml): for `jobline --version` and the OpenAPI
document."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version


def jobline_version() -> str:
    """The installed package's version, not a second copy of it."""
    try:
        return version("jobline")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown (not installed: pip install -e .)"
