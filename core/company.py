"""The company as people see it: one name, one time zone, one currency symbol.

The name and the time zone live in the communication settings (DESIGN.md §4 keeps them there);
everything else about the company's look lives in the branding settings. Pages, messages,
documents and the portal read the company from here, so there is one name to change.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlmodel.ext.asyncio.session import AsyncSession

from core import settings_store
from models import display
from models.branding import BrandingSettings
from models.communications import CommunicationSettings


@dataclass(frozen=True)
class Company:
    name: str
    zone: ZoneInfo
    currency_symbol: str
    branding: BrandingSettings

    @classmethod
    def of(cls, comms: CommunicationSettings, branding: BrandingSettings) -> Company:
        return cls(
            name=branding.company_name or comms.company_name,
            zone=comms.zone,
            currency_symbol=branding.currency_symbol,
            branding=branding,
        )

    def when(self, moment: datetime | None) -> str:
        return display.when(moment, self.zone) if moment else ""

    def day(self, value: date | datetime | None) -> str:
        return display.day(value, self.zone) if value else ""

    def window(self, start: datetime, end: datetime) -> str:
        return display.window(start, end, self.zone)

    def money(self, amount: Decimal | int | float | str | None) -> str:
        return display.money(amount, self.currency_symbol)


async def load_company(session: AsyncSession) -> Company:
    comms = await settings_store.load(session, settings_store.COMMUNICATIONS, CommunicationSettings)
    branding = await settings_store.load(session, settings_store.BRANDING, BrandingSettings)
    return Company.of(comms, branding)
