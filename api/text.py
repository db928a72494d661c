"""Text the database can store: the API's parameters and bodies refuse NUL characters with a 422
that names the field. The check itself is the models' (models/text.py), shared with the settings
documents."""

from __future__ import annotations

from models.text import NUL_MESSAGE, NoNul, NulFree, find_nul

__all__ = ["NUL_MESSAGE", "NoNul", "NulFree", "find_nul"]
