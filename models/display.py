"""How times and money read to people: staff pages, emails, SMS, PDFs and the portal.

Pure: no I/O. Every time shown to a person is in the company's time zone with the zone named
("Tue 3 Jun 2026, 09:00 EDT"); every amount carries the currency symbol ("$1,234.50"). One
place, so a page and the email about the same job never disagree.
"""

from __future__ import annotations

from datetime import date, datetime, tzinfo
from decimal import Decimal, InvalidOperation


def zone_name(moment: datetime) -> str:
    """The zone's short name at that moment (EDT in summer, EST in winter); zones without one
    (tzdata writes "+03") read as UTC+03."""
    name = moment.strftime("%Z")
    return f"UTC{name}" if name[:1] in "+-" else name


def when(moment: datetime, zone: tzinfo) -> str:
    """A moment for people: `Tue 3 Jun 2026, 09:00 EDT`."""
    local = moment.astimezone(zone)
    return f"{local:%a} {local.day} {local:%b %Y, %H:%M} {zone_name(local)}"


def day(value: date | datetime, zone: tzinfo) -> str:
    """A date for people: `Tue 3 Jun 2026` (a moment is taken in the company's zone first)."""
    if isinstance(value, datetime):
        value = value.astimezone(zone)
    return f"{value:%a} {value.day} {value:%b %Y}"


def window(start: datetime, end: datetime, zone: tzinfo) -> str:
    """An appointment window: `Tue 3 Jun, 09:00–11:00 EDT`, or both ends in full across days."""
    first, last = start.astimezone(zone), end.astimezone(zone)
    if first.date() == last.date():
        return f"{first:%a} {first.day} {first:%b}, {first:%H:%M}–{last:%H:%M} {zone_name(last)}"
    return f"{when(first, zone)} – {when(last, zone)}"


def money(amount: Decimal | int | float | str | None, symbol: str) -> str:
    """`$1,234.50`, `-$20.00`; empty for no amount."""
    if amount is None or amount == "":
        return ""
    try:
        value = Decimal(str(amount))
    except InvalidOperation:
        return str(amount)
    sign = "-" if value < 0 else ""
    return f"{sign}{symbol}{abs(value):,.2f}"


def local_input(moment: datetime | None, zone: tzinfo) -> str:
    """A moment as a `datetime-local` input's value in the company's zone (`2026-06-03T09:00`)."""
    return moment.astimezone(zone).strftime("%Y-%m-%dT%H:%M") if moment else ""


def from_local_input(text: str, zone: tzinfo) -> datetime | None:
    """What a person typed in a `datetime-local` input, read in the company's zone; None when
    empty. Raises ValueError for text that is not a date and time."""
    text = text.strip()
    if not text:
        return None
    typed = datetime.fromisoformat(text)
    if typed.tzinfo is not None:  # a program sent an offset: it means what it says
        return typed
    return typed.replace(tzinfo=zone)
