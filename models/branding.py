"""How Jobline's documents look: the company's name, contact details, colour and logo.

Pure: no I/O. Stored as the `branding` settings document; the renderer (activities/documents.py)
reads it each time it renders, so a change applies to the next document and never rewrites one
already stored.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from models.events import Email

_HEX_COLOUR = re.compile(r"^#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})$")
DOCUMENT_ID = r"^[0-9a-f]{32}$"
# What a logo may be: the formats WeasyPrint and browsers decode as pixels. SVG is not taken, as
# an SVG is a document that may name other URLs of its own.
LOGO_TYPES = {
    b"\x89PNG\r\n\x1a\n": "image/png",
    b"\xff\xd8\xff": "image/jpeg",
    b"GIF87a": "image/gif",
    b"GIF89a": "image/gif",
}
LOGO_EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/gif": "gif"}


def logo_type(content: bytes) -> str | None:
    """The image type of an uploaded logo by its first bytes, or None if it is not one we take."""
    for magic, content_type in LOGO_TYPES.items():
        if content.startswith(magic):
            return content_type
    return None


def _hex_colour(value: str) -> str:
    if not _HEX_COLOUR.match(value):
        raise ValueError("not a hex colour (like #1f4e79 or #c00)")
    value = value.lower()
    if len(value) == 4:  # #abc -> #aabbcc, so templates can rely on six digits
        value = "#" + "".join(c * 2 for c in value[1:])
    return value


HexColour = Annotated[str, StringConstraints(strip_whitespace=True), AfterValidator(_hex_colour)]
Line = Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)]


class BrandingSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # None: the communication settings' company name, so there is one name to change.
    company_name: (
        Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
        | None
    ) = None
    address: Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)] = ""
    phone: Line = ""
    email: Email | None = None
    website: Line = ""
    # The colour of headings, rules and table heads. Validated as hex: it is written into CSS.
    primary_color: HexColour = "#1f4e79"
    # An uploaded image document (PNG, JPEG or GIF), or None for no logo.
    logo_document_id: Annotated[str | None, Field(pattern=DOCUMENT_ID)] = None
    currency_symbol: Annotated[str, StringConstraints(max_length=4)] = "$"
    paper_size: Literal["letter", "A4"] = "letter"
    # Printed at the foot of quotes and invoices (payment terms, licence numbers, ...).
    footer: Annotated[str, StringConstraints(strip_whitespace=True, max_length=1000)] = ""
