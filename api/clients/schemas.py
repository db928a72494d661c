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
    model_config = ConfigDict(extra="forbid")

    name: Name
    email: Email | None = None
    phone: Phone | None = None
    tier: Tier = "standard"
    billing_email: Email | None = None
    address: Address = ""
    notes: Notes = ""


class ClientUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

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


class ClientPublic(BaseModel):
    id: int
    client_number: str
    name: str
    email: str | None
    phone: str | None
    tier: Tier
    billing_email: str | None
    address: str
    notes: str
    created_at: datetime
    updated_at: datetime


class ClientPage(BaseModel):
    items: list[ClientPublic]
    total: int
    page: int
    page_size: int
