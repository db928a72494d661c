from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, StringConstraints

from models.events import Email, Phone

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Address = Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)]
Notes = Annotated[str, StringConstraints(strip_whitespace=True, max_length=4000)]
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
