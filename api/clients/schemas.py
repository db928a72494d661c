from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, StringConstraints, model_validator

from api.text import NoNul
from models.events import Email as EventEmail
from models.events import Phone

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), NoNul]
Address = Annotated[str, StringConstraints(strip_whitespace=True, max_length=500), NoNul]
Notes = Annotated[str, StringConstraints(strip_whitespace=True, max_length=4000), NoNul]
Email = Annotated[EventEmail, NoNul]
Tier = Literal["standard", "platinum", "gov"]


class ClientCreate(BaseModel):
    # Strict: text is text (never a number read as one), and nothing is guessed.
    model_config = ConfigDict(extra="forbid", strict=True)

    name: Name
    email: Email | None = None
    phone: Phone | None = None
    tier: Tier = "standard"
    billing_email: Email | None = None
    address: Address = ""
    notes: Notes = ""


class ClientUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    name: Name | None = None
    email: Email | None = None
    phone: Phone | None = None
    tier: Tier | None = None
    billing_email: Email | None = None
    address: Address | None = None
    notes: Notes | None = None

    @model_validator(mode="after")
    def _required_stay_set(self) -> ClientUpdate:
        # null clears email, phone and billing_email; these always have a value.
        cleared = [
            f
            for f in ("name", "tier", "address", "notes")
            if f in self.model_fields_set and getattr(self, f) is None
        ]
        if cleared:
            raise ValueError(
                f"{', '.join(cleared)} cannot be null: send a value (an empty string clears "
                "address or notes)"
            )
        return self


class ClientContact(BaseModel):
    """A client as a technician reads it: everything but the office's internal notes."""

    id: int
    client_number: str
    name: str
    email: str | None
    phone: str | None
    tier: Tier
    billing_email: str | None
    address: str
    created_at: datetime
    updated_at: datetime


class ClientPublic(ClientContact):
    """A client as the office reads it."""

    notes: str


# The full record first: a reader who may see the notes gets them.
ClientShown = ClientPublic | ClientContact


class ClientPage(BaseModel):
    items: list[ClientShown]
    total: int
    page: int
    page_size: int
