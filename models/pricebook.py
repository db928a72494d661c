"""The price book's rules (issue 11 item 1): what an item and a fixed price are, and what a row
of a price-book CSV must hold. Pure: no I/O (the CSV text is read in api/pricebook/csv_io.py).

- An item: `sku` (letters, digits, `.`, `_`, `-`; at most 64), `name`, `description`,
  `unit_price` (the list price), `taxable`, `category`, `active`.
- A fixed price: for a client tier (`standard`, `platinum`, `gov`) or for one client, exactly one
  of the two. A client's own price beats its tier's, which beats the list price; a quote cannot
  change a fixed price (`resolve`).
- A CSV row: `CSV_COLUMNS`; `sku`, `name` and `unit_price` must be in the header, the rest may be
  left out (a new item then takes the defaults, an existing one keeps what it has). Each problem
  names the file's line (the header is line 1) and the column.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    StrictBool,
    StringConstraints,
    ValidationError,
    model_validator,
)

from models.bounds import CENT, MONEY_MAX, Id, Money
from models.text import NoNul

SKU_MAX = 64
NAME_MAX = 200
DESCRIPTION_MAX = 2000
CATEGORY_MAX = 100
TIERS = ("standard", "platinum", "gov")
Tier = Literal["standard", "platinum", "gov"]
Basis = Literal["list", "tier", "client"]

# Letters, digits and . _ - : a SKU sits in a URL path (/pricebook/{sku}) and in a CSV cell.
SKU_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"


def _price_in_range(value: Decimal) -> Decimal:
    # Always checked (not only at the edge, as `Money` is): no stored price predates the rule.
    if value > MONEY_MAX:
        raise ValueError(f"must be at most {MONEY_MAX:,.2f}")
    return value.quantize(CENT)


Sku = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=SKU_MAX, pattern=SKU_PATTERN),
]
ItemName = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=NAME_MAX), NoNul
]
Description = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=DESCRIPTION_MAX), NoNul
]
Category = Annotated[str, StringConstraints(strip_whitespace=True, max_length=CATEGORY_MAX), NoNul]
Price = Annotated[Money, AfterValidator(_price_in_range)]


class FixedPrice(BaseModel):
    """A price a tier's clients, or one client, pay for an item instead of the list price."""

    model_config = ConfigDict(extra="forbid")

    tier: Tier | None = None
    client_id: Id | None = None
    unit_price: Price

    @model_validator(mode="after")
    def _one_of(self) -> FixedPrice:
        if (self.tier is None) == (self.client_id is None):
            raise ValueError("a fixed price is for a tier or for a client_id: give exactly one")
        return self


def fixed_prices_problem(prices: Sequence[FixedPrice]) -> str | None:
    """Why a list of fixed prices cannot be one item's, if it cannot (two for one tier or one
    client)."""
    tiers = [p.tier for p in prices if p.tier is not None]
    clients = [p.client_id for p in prices if p.client_id is not None]
    for tier in tiers:
        if tiers.count(tier) > 1:
            return f"tier {tier} has more than one fixed price; give one"
    for client in clients:
        if clients.count(client) > 1:
            return f"client {client} has more than one fixed price; give one"
    return None


def _distinct(prices: list[FixedPrice]) -> list[FixedPrice]:
    if problem := fixed_prices_problem(prices):
        raise ValueError(problem)
    return prices


FixedPrices = Annotated[list[FixedPrice], AfterValidator(_distinct)]


class ItemFields(BaseModel):
    """What an item holds besides its SKU and fixed prices."""

    model_config = ConfigDict(extra="forbid")

    name: ItemName
    description: Description = ""
    unit_price: Price
    taxable: StrictBool = True
    category: Category = ""
    active: StrictBool = True


@dataclass(frozen=True)
class Resolved:
    """What a client pays for an item, and why."""

    unit_price: Decimal
    basis: Basis


def resolve(
    list_price: Decimal,
    tier_prices: Mapping[str, Decimal],
    client_prices: Mapping[int, Decimal],
    client_id: int | None,
    tier: str | None,
) -> Resolved:
    """The client's own fixed price, else its tier's, else the list price."""
    if client_id is not None and client_id in client_prices:
        return Resolved(client_prices[client_id], "client")
    if tier is not None and tier in tier_prices:
        return Resolved(tier_prices[tier], "tier")
    return Resolved(list_price, "list")


# --- CSV rows ------------------------------------------------------------------------------------

TIER_COLUMNS = {f"price_{tier}": tier for tier in TIERS}
CSV_COLUMNS = (
    "sku",
    "name",
    "description",
    "unit_price",
    "taxable",
    "category",
    "active",
    *TIER_COLUMNS,
)
REQUIRED_COLUMNS = ("sku", "name", "unit_price")
MAX_ROWS = 5000
_YES = {"yes", "y", "true", "1"}
_NO = {"no", "n", "false", "0"}


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an import file: its line (the header is 1), the column (empty for the
    row or the file as a whole) and what to fix."""

    line: int
    column: str
    message: str


@dataclass(frozen=True)
class CsvRow:
    """A clean row: the item's fields the file gives (only its columns), and the tier prices it
    sets (None: removed)."""

    line: int
    sku: str
    fields: dict[str, Any]
    tier_prices: dict[str, Decimal | None]


@dataclass
class CsvCheck:
    rows: list[CsvRow] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    row_count: int = 0


def flag(text: str) -> bool | None:
    """yes/no (also y/n, true/false, 1/0, any case) as a bool; None for anything else."""
    word = text.strip().lower()
    if word in _YES:
        return True
    if word in _NO:
        return False
    return None


class _RowItem(BaseModel):
    """A row's item fields, as far as its columns go."""

    model_config = ConfigDict(extra="forbid")

    sku: Sku
    name: ItemName | None = None
    description: Description | None = None
    unit_price: Price | None = None
    category: Category | None = None


def _words(error: dict[str, Any]) -> str:
    kind = error.get("type", "")
    context = error.get("ctx") or {}
    if kind == "string_too_long":
        return f"must be {context.get('max_length')} characters or fewer"
    if kind == "string_too_short":
        return "is required; it is empty"
    if kind == "string_pattern_mismatch":
        return "must be letters, digits, '.', '_' or '-' (starting with a letter or digit)"
    return str(error.get("msg", "is not valid")).removeprefix("Value error, ")


def header_problems(header: Sequence[str]) -> list[Problem]:
    problems = []
    seen: set[str] = set()
    for name in header:
        if name not in CSV_COLUMNS:
            problems.append(
                Problem(
                    1, name, f"unknown column {name!r}; the columns are {', '.join(CSV_COLUMNS)}"
                )
            )
        elif name in seen:
            problems.append(Problem(1, name, f"column {name!r} appears twice"))
        seen.add(name)
    for name in REQUIRED_COLUMNS:
        if name not in header:
            problems.append(Problem(1, name, f"the header has no {name!r} column; it is required"))
    return problems


def check_row(
    line: int, header: Sequence[str], cells: Sequence[str]
) -> tuple[CsvRow | None, list[Problem]]:
    """One data row against the header: the clean row, or its problems."""
    if len(cells) != len(header):
        return None, [
            Problem(line, "", f"has {len(cells)} cells; the header has {len(header)} columns")
        ]
    values = dict(zip(header, cells, strict=True))
    problems: list[Problem] = []
    for name, text in values.items():
        if "\x00" in text:
            problems.append(Problem(line, name, "may not contain NUL characters"))
    if problems:
        return None, problems

    item: dict[str, Any] = {
        k: values[k] for k in ("sku", "name", "description", "category") if k in values
    }
    if "unit_price" in values:
        item["unit_price"] = values["unit_price"].strip()
    for name in ("name", "unit_price"):
        if name in item and not item[name].strip():
            problems.append(Problem(line, name, "is required; it is empty"))
            item.pop(name)
    parsed: _RowItem | None = None
    try:
        parsed = _RowItem.model_validate(item)
    except ValidationError as error:
        for e in error.errors():
            column = str((e.get("loc") or ("",))[0])
            problems.append(Problem(line, column, _words(dict(e))))

    flags: dict[str, bool] = {}
    for name in ("taxable", "active"):
        if name in values:
            value = flag(values[name])
            if value is None:
                problems.append(
                    Problem(line, name, f"must be yes or no, not {values[name].strip()!r}"[:300])
                )
            else:
                flags[name] = value

    tier_prices: dict[str, Decimal | None] = {}
    for column, tier in TIER_COLUMNS.items():
        if column not in values:
            continue
        text = values[column].strip()
        if not text:
            tier_prices[tier] = None
            continue
        try:
            price = FixedPrice.model_validate({"tier": tier, "unit_price": text})
        except ValidationError as error:
            problems.append(Problem(line, column, _words(dict(error.errors()[0]))))
        else:
            tier_prices[tier] = price.unit_price

    if problems or parsed is None:
        return None, problems
    fields = parsed.model_dump(exclude={"sku"}, exclude_none=True)
    fields.update(flags)
    return CsvRow(line, parsed.sku, fields, tier_prices), []


def check_rows(header: Sequence[str], records: Iterable[tuple[int, Sequence[str]]]) -> CsvCheck:
    """Every problem of a file (header, then rows in order, a repeated SKU too), or its clean
    rows when it has none. `records`: each data row with the line it starts on."""
    check = CsvCheck()
    check.problems.extend(header_problems(header))
    if check.problems:
        return check
    first_line: dict[str, int] = {}
    for line, cells in records:
        if not any(c.strip() for c in cells):
            continue  # a blank line is not a row
        check.row_count += 1
        if check.row_count > MAX_ROWS:
            check.problems.append(
                Problem(line, "", f"the file has more than {MAX_ROWS:,} rows; split it")
            )
            break
        row, problems = check_row(line, header, cells)
        check.problems.extend(problems)
        if row is None:
            continue
        if row.sku in first_line:
            check.problems.append(
                Problem(line, "sku", f"SKU {row.sku} is also on line {first_line[row.sku]}")
            )
            continue
        first_line[row.sku] = line
        check.rows.append(row)
    if check.row_count == 0 and not check.problems:
        check.problems.append(Problem(1, "", "the file has a header but no rows"))
    if check.problems:
        check.rows = []
    return check
