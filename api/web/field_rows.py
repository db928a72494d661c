"""The field-row editor two settings pages share: the closeout page's receipt fields and the
resulting page's Sale and No Sale fields. Both are a list of fields with a key, a label, a type,
"required" and a dropdown's options (models.closeout.ReceiptField and its kin), edited the same
way, so they are read, ordered and pointed at by one piece of code and drawn by one template
macro (`field_rows` in templates/settings_macros.html).

A form holds rows named `{prefix}-{n}-{part}` (`rf-0-key`, `sale-rf-2-options`) and one hidden
count of them. Works without JavaScript: "Add a field" posts the form and the page comes back
with one more blank row; a row is removed by ticking its "Remove this field"; rows are ordered by
the positions typed. Rows left empty are ignored, so the page can offer blank rows to type into.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from starlette.datastructures import FormData

Row = dict[str, str]

TYPE_NAMES = {
    "text": "Text",
    "number": "Number",
    "currency": "Amount of money",
    "date": "Date",
    "dropdown": "Dropdown (pick one option)",
    "checkbox": "Checkbox (yes or no)",
}
MAX_FIELDS = 50  # the models' limit; a form never holds many more rows than that
PARTS = ("position", "key", "label", "type", "required", "options", "delete")


def form_text(form: FormData, name: str) -> str:
    value = form.get(name)
    # Browsers send a textarea's new lines as CRLF; options and addresses keep plain LF.
    return value.replace("\r\n", "\n") if isinstance(value, str) else ""


@dataclass(frozen=True)
class FieldRows:
    """One editor on a page: its rows' name prefix, the hidden count's name, and how many blank
    rows a page opens with."""

    prefix: str
    count_name: str
    blank_rows: int = 2

    @property
    def max_rows(self) -> int:
        return MAX_FIELDS + self.blank_rows

    def name(self, n: int | str, part: str) -> str:
        return f"{self.prefix}-{n}-{part}"

    @staticmethod
    def row(index: int, field: dict[str, Any] | None = None) -> Row:
        field = field or {}
        return {
            "n": str(index),
            "position": str(index + 1),
            "key": field.get("key", ""),
            "label": field.get("label", ""),
            "type": field.get("type", "text"),
            "required": "on" if field.get("required") else "",
            "options": "\n".join(field.get("options", [])),
            "delete": "",
        }

    def from_settings(self, fields: Sequence[BaseModel]) -> list[Row]:
        """The stored fields as rows, and the blank rows to type new ones into."""
        rows = [self.row(i, f.model_dump()) for i, f in enumerate(fields)]
        return rows + [self.row(len(rows) + i) for i in range(self.blank_rows)]

    def from_form(self, form: FormData) -> list[Row]:
        """The rows as typed, every one of them (blank and ticked-for-removal ones too), so a
        refused form comes back as it was sent."""
        try:
            count = min(max(int(form_text(form, self.count_name) or "0"), 0), self.max_rows)
        except ValueError:
            count = 0
        return [
            {"n": str(i), **{part: form_text(form, self.name(i, part)) for part in PARTS}}
            for i in range(count)
        ]

    def with_blank_row(self, rows: list[Row]) -> list[Row]:
        """One more blank row at the end ("Add a field"); nothing saved."""
        return [*rows, self.row(len(rows))] if len(rows) < self.max_rows else rows

    @staticmethod
    def kept(rows: list[Row]) -> list[Row]:
        """The rows to save, in the order of the positions typed (ties and unreadable positions
        keep their place), without blank rows and rows ticked for removal."""

        def position(item: tuple[int, Row]) -> tuple[float, int]:
            i, row = item
            try:
                return float(row["position"]), i
            except ValueError:
                return float(i + 1), i

        ordered = [row for _, row in sorted(enumerate(rows), key=position)]
        return [row for row in ordered if not row["delete"] and not _is_blank(row)]

    @staticmethod
    def documents(kept: list[Row]) -> list[dict[str, Any]]:
        """The kept rows as the settings model reads fields: one option a line."""
        return [
            {
                "key": row["key"],
                "label": row["label"],
                "type": row["type"],
                "required": bool(row["required"]),
                "options": [o.strip() for o in row["options"].split("\n") if o.strip()],
            }
            for row in kept
        ]

    def for_template(self, rows: list[Row]) -> list[dict[str, Any]]:
        """Rows with their values under the form's names (`v`), as the macros look them up."""
        return [{**row, "v": {self.name(row["n"], k): v for k, v in row.items()}} for row in rows]

    def problem_at(self, kept: list[Row], loc: tuple[Any, ...], message: str) -> str | None:
        """The form field a validation problem of the field list is about. `loc` is the error's
        location below the list (`(1, "options")`, or `()` for the list as a whole)."""
        if loc and isinstance(loc[0], int) and loc[0] < len(kept):
            n = kept[loc[0]]["n"]
            part = str(loc[1]) if len(loc) > 1 else ""
            if part in ("key", "label", "type", "options", "required"):
                return self.name(n, part)
            # The field's own checks (a dropdown's options) name no part: by what they say.
            return self.name(n, "options" if "option" in message else "key")
        # Two fields with one key: the second of them.
        found = re.search(r"key '([^']*)'", message)
        twins = [r["n"] for r in kept if found and r["key"].strip() == found.group(1)]
        return self.name(twins[-1], "key") if twins else None


def _is_blank(row: Row) -> bool:
    return not (row["key"].strip() or row["label"].strip() or row["options"].strip())
