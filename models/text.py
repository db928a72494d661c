"""Text the database can store. PostgreSQL text cannot hold NUL characters: they are refused at
the edge with a 422 that names the field, instead of a failed write (a 500), a workflow whose
projection can never be written, or a message that can never be queued."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import AfterValidator, BeforeValidator

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


def refuse_nul(document: Any) -> Any:
    """`document` as it is, or ValueError naming the first text (or key) holding a NUL."""
    where = find_nul(document)
    if where is not None:
        raise ValueError(f"{where}: {NUL_MESSAGE}")
    return document


# A whole document as a client sends it (the settings): every text, however deep, keys too, and
# any added later. On the route's body, not the model: a document stored before is still read.
# `body: Annotated[CommunicationSettings, NulFree]`
NulFree = BeforeValidator(refuse_nul)
