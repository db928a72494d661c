"""The resulting rules (models/resulting.py), pure: a table of every settings rule and every
field check, and properties over generated forms and values."""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from models.resulting import (
    PATTERNS,
    ResultField,
    ResultingSettings,
    field_problems,
    normalised,
    submission,
)
from tests.api.settings import RESULTING_ON

# The settings the API tests use: Sale with currency, checkbox, text, date and number fields
# (in that order), No Sale with a dropdown and more.
GOOD: dict[str, Any] = RESULTING_ON


def changed(path: str, value: Any) -> dict[str, Any]:
    data = copy.deepcopy(GOOD)
    *parents, last = path.split(".")
    target: Any = data
    for step in parents:
        target = target[int(step)] if step.isdigit() else target[step]
    target[int(last) if last.isdigit() else last] = value
    return data


def test_the_good_settings_and_the_defaults_are_valid() -> None:
    ResultingSettings.model_validate(GOOD)
    defaults = ResultingSettings()
    assert defaults.enabled is False  # off until an admin turns it on (recipients come first)
    assert defaults.types.sale.fields and defaults.types.no_sale.fields


SETTINGS_RULES = [
    # (what, path, value, the message names)
    ("a type with no field", "types.sale.fields", [], "at least 1 item"),
    ("no recipients while enabled", "types.no_sale.recipients", [], "no recipients"),
    ("an invalid address", "types.sale.recipients", ["sales@"], "not an email address"),
    (
        "a duplicated key",
        "types.sale.fields",
        [GOOD["types"]["sale"]["fields"][0]] * 2,
        "keys are unique",
    ),
    ("an empty label", "types.sale.fields.0.label", "  ", "at least 1 character"),
    ("a dropdown with one option", "types.no_sale.fields.0.options", ["Price"], "two options"),
    ("a dropdown with no option", "types.no_sale.fields.0.options", [], "two options"),
    ("an option twice", "types.no_sale.fields.0.options", ["A", "A"], "lists an option twice"),
    ("options on a text field", "types.sale.fields.2.options", ["x", "y"], "only dropdowns"),
    ("an unknown pattern", "types.sale.pattern", "fancy", "unknown pattern"),
    ("an unknown field type", "types.sale.fields.0.type", "colour", "'dropdown'"),
    ("a key that is not a key", "types.sale.fields.0.key", "Sale Amount", "lower-case"),
    ("days below one", "unresulted_after_days", 0, "greater than or equal to 1"),
    ("an unknown type", "types.maybe", {"fields": []}, "Extra inputs"),
]


@pytest.mark.parametrize(("what", "path", "value", "named"), SETTINGS_RULES)
def test_each_settings_rule_refuses_naming_the_problem(
    what: str, path: str, value: Any, named: str
) -> None:
    with pytest.raises(ValidationError) as refused:
        ResultingSettings.model_validate(changed(path, value))
    assert named in str(refused.value), (what, str(refused.value))


def test_recipients_may_wait_while_resulting_is_off() -> None:
    data = changed("enabled", False)
    data["types"]["sale"]["recipients"] = []
    assert ResultingSettings.model_validate(data).types.sale.recipients == []


def test_there_are_at_least_two_patterns() -> None:
    assert {"standard", "compact"} <= set(PATTERNS)


SETTINGS = ResultingSettings.model_validate(GOOD)
FIELD_RULES = [
    # (type, fields, the problem names)
    ("sale", {}, "Sale amount (sale_amount) is required"),
    ("sale", {"sale_amount": ""}, "Sale amount (sale_amount) is required"),
    ("sale", {"sale_amount": "ten"}, "must be an amount of money"),
    ("sale", {"sale_amount": "-5"}, "must not be negative"),
    ("sale", {"sale_amount": "5.001"}, "more than two decimal places"),
    ("sale", {"sale_amount": "5", "units": "many"}, "Units (units) must be a number"),
    ("sale", {"sale_amount": "5", "signed_on": "tomorrow"}, "must be a date"),
    ("sale", {"sale_amount": "5", "financing": "yes"}, "must be true or false"),
    ("sale", {"sale_amount": "5", "notes": 42}, "Notes (notes) must be text"),
    ("sale", {"sale_amount": "5", "mood": "happy"}, "unknown Sale field 'mood'"),
    ("no_sale", {"loss_reason": "Weather"}, "'Weather' is not one of the options"),
    ("no_sale", {}, "Why we lost it (loss_reason) is required"),
    ("maybe", {}, "type must be one of"),
]


@pytest.mark.parametrize(("result_type", "fields", "named"), FIELD_RULES)
def test_each_field_check_names_the_field(result_type: str, fields: Any, named: str) -> None:
    problems = field_problems(SETTINGS, result_type, fields)
    assert any(named in p for p in problems), problems


def test_a_good_submission_is_kept_normalised_with_its_form() -> None:
    fields = {
        "sale_amount": "12450",
        "signed_on": "2030-01-05",
        "units": "2e3",
        "financing": False,
        "notes": "  Signed on site  ",
    }
    assert field_problems(SETTINGS, "sale", fields) == []
    made = submission(SETTINGS, "sale", fields, "sam")
    assert made.fields == {
        "sale_amount": "12450.00",
        "signed_on": "2030-01-05",
        "units": "2000",
        "financing": False,
        "notes": "Signed on site",
    }
    assert made.amount == Decimal("12450.00")
    assert [f.key for f in made.form] == ["sale_amount", "financing", "notes", "signed_on", "units"]
    assert made.recipients == ["sales@example.com"] and made.pattern == "standard"
    # Optional fields left empty are left out.
    assert submission(SETTINGS, "sale", {"sale_amount": "1", "notes": ""}, "sam").fields == {
        "sale_amount": "1.00"
    }


# --- properties ---------------------------------------------------------------------------------

KEYS = st.from_regex(r"[a-z][a-z0-9_]{0,10}", fullmatch=True)
LABELS = st.text(st.characters(categories=("L", "N", "Zs")), min_size=1, max_size=20).filter(
    str.strip
)


@st.composite
def forms(draw: st.DrawFn) -> list[ResultField]:
    keys = draw(st.lists(KEYS, min_size=1, max_size=5, unique=True))
    fields = []
    for key in keys:
        type_ = draw(
            st.sampled_from(["dropdown", "text", "number", "currency", "date", "checkbox"])
        )
        options = (
            draw(st.lists(LABELS.map(str.strip), min_size=2, max_size=4, unique=True))
            if type_ == "dropdown"
            else []
        )
        fields.append(
            ResultField(
                key=key,
                label=draw(LABELS),
                type=type_,
                required=draw(st.booleans()),
                options=options,
            )
        )
    return fields


VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 10**6),
    st.text(max_size=12),
    st.sampled_from(["12.50", "2030-01-05", "1e3", "NaN", "0.001", ""]),
)


@settings(max_examples=200, deadline=None)
@given(form=forms(), data=st.data())
def test_any_values_are_accepted_and_kept_or_refused_naming_a_field(
    form: list[ResultField], data: st.DataObject
) -> None:
    """Whatever a client sends: either every problem names a configured field or an unknown
    key, or the values are accepted and normalise without error (nothing in between)."""
    keys = [f.key for f in form] + ["stray"]
    values = data.draw(st.dictionaries(st.sampled_from(keys), VALUES, max_size=6))
    raw = {"fields": [f.model_dump() for f in form], "recipients": ["a@example.com"]}
    result_settings = ResultingSettings.model_validate(
        {"enabled": True, "types": {"sale": raw, "no_sale": raw}}
    )
    problems = field_problems(result_settings, "sale", values)
    if problems:
        for problem in problems:
            assert any(f"({f.key})" in problem or repr(f.key) in problem for f in form) or (
                "unknown" in problem
            ), problem
        return
    kept = normalised(result_settings.types.sale, values)
    assert set(kept) <= {f.key for f in form}
    for field in form:
        if field.required:
            assert field.key in kept
        if field.type == "dropdown" and field.key in kept:
            assert kept[field.key] in field.options
