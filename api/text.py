"""Text the database can store. PostgreSQL text cannot hold NUL characters: refuse them at the
edge with a 422 that names the field, instead of a failed write (a 500) or a workflow whose
projection can never be written."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import AfterValidator

T = TypeVar("T")
NUL_MESSAGE = "text may not contain NUL characters"


def _no_nul(value: T) -> T:
    if isinstance(value, str) and "\x00" in value:
        raise ValueError(NUL_MESSAGE)
    return value


# Add to a str (or str | None) annotation: `Annotated[str, ..., NoNul]`.
NoNul = AfterValidator(_no_nul)


def find_nul(value: Any, where: str = "") -> str | None:
    """The path of the first string (or key) in `value` that holds a NUL character, if any."""
    if isinstance(value, str):
        return (where or "value") if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            path = f"{where}.{key}" if where else str(key)
            found = find_nul(key, path) or find_nul(item, path)
            if found:
                return found
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            found = find_nul(item, f"{where}.{index}" if where else str(index))
            if found:
                return found
    return None
