"""Communication settings, templates and SMS segments (models/communications.py), pure.

- settings validation: each refusal names the field and says what is wrong, in words a person
  editing `/settings/communications` can act on;
- `unknown_merge_fields` and `render`: the merge fields a template may use, and their values;
- `sms_segments`: what a carrier bills, GSM-7 (160 / 153 septets, extension characters such as €
  taking two) or UCS-2 (70 / 67 units) as soon as one character is outside GSM-7.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, time
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from models.communications import (
    DEFAULT_STAGE_LIMITS,
    DEFAULT_TEMPLATES,
    MERGE_FIELDS,
    PURPOSES,
    CommunicationSettings,
    MessageTemplate,
    QuietHours,
    _compiled,
    customer_recipients,
    message_context,
    render,
    sms_segments,
    unknown_merge_fields,
)
from models.lifecycle import ClientSnapshot, JobState, Quote, Schedule, Stage

# --- settings validation ---------------------------------------------------------------------


def refusal(**document: Any) -> tuple[tuple[Any, ...], str]:
    """The (location, message) of the single error these settings are refused with."""
    with pytest.raises(ValidationError) as refused:
        CommunicationSettings.model_validate(document)
    (error,) = refused.value.errors()
    return error["loc"], error["msg"]


def test_defaults_are_valid_and_complete() -> None:
    settings = CommunicationSettings()
    assert settings.follow_up_interval_hours == 72
    assert settings.max_follow_ups == 3
    assert settings.appointment_reminder_hours == 24
    assert settings.payment_reminder_days == 7
    assert settings.quiet_hours == QuietHours(start=time(21, 0), end=time(8, 0))
    assert settings.timezone == "UTC"
    assert set(settings.templates) == set(PURPOSES) == set(DEFAULT_TEMPLATES)
    assert {str(k): v for k, v in settings.stage_limits_hours.items()} == DEFAULT_STAGE_LIMITS
    assert Stage.closed not in settings.stage_limits_hours
    assert Stage.canceled not in settings.stage_limits_hours


def test_a_stored_document_reads_back_the_same() -> None:
    settings = CommunicationSettings(
        timezone="America/Chicago",
        quiet_hours=QuietHours(start=time(22, 30), end=time(7, 0)),
        follow_up_interval_hours=48,
        stage_limits_hours={Stage.approved: 5},
    )
    document = settings.model_dump(mode="json")
    assert CommunicationSettings.model_validate(document) == settings


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("follow_up_interval_hours", -1, "greater than or equal to 1"),
        ("follow_up_interval_hours", 0, "greater than or equal to 1"),
        ("follow_up_interval_hours", 24 * 90 + 1, "less than or equal to 2160"),
        ("appointment_reminder_hours", -24, "greater than or equal to 1"),
        ("payment_reminder_days", 0, "greater than or equal to 1"),
        ("max_follow_ups", -1, "greater than or equal to 0"),
        ("company_name", "", "at least 1 character"),
    ],
)
def test_out_of_range_numbers_are_refused(field: str, value: object, message: str) -> None:
    loc, msg = refusal(**{field: value})
    assert loc == (field,)
    assert message in msg


def test_no_follow_ups_at_all_is_allowed() -> None:
    assert CommunicationSettings(max_follow_ups=0).max_follow_ups == 0


@pytest.mark.parametrize("zone", ["Mars/Olympus_Mons", "Chicago", "utc", "", "../etc/passwd"])
def test_an_unknown_time_zone_is_refused(zone: str) -> None:
    loc, msg = refusal(timezone=zone)
    assert loc == ("timezone",)
    assert f"unknown time zone {zone!r}" in msg
    assert "IANA name like America/Chicago" in msg


def test_a_known_time_zone_is_kept() -> None:
    settings = CommunicationSettings(timezone="America/Chicago")
    assert settings.zone.key == "America/Chicago"


@pytest.mark.parametrize("stage", ["closed", "canceled"])
def test_final_stages_take_no_stage_limit(stage: str) -> None:
    loc, msg = refusal(stage_limits_hours={stage: 24, "lead": 48})
    assert loc == ("stage_limits_hours",)
    assert msg == "Value error, closed and canceled jobs are never stuck: no limit for them"


def test_stage_limits_name_real_stages_and_positive_hours() -> None:
    loc, msg = refusal(stage_limits_hours={"waiting_for_godot": 24})
    assert loc[0] == "stage_limits_hours"
    loc, msg = refusal(stage_limits_hours={"lead": 0})
    assert loc == ("stage_limits_hours", "lead") and "greater than or equal to 1" in msg


def test_quiet_hours_cannot_be_empty() -> None:
    loc, msg = refusal(quiet_hours={"start": "08:00", "end": "08:00"})
    assert loc == ("quiet_hours",)
    assert "same time; use null for none" in msg
    assert CommunicationSettings(quiet_hours=None).quiet_hours is None


def test_an_unknown_merge_field_is_refused_naming_the_template_part() -> None:
    loc, msg = refusal(
        templates={
            "quote_follow_up": {
                "email_subject": "About your quote, {{ first_name }}",
                "email_body": "Hello {{ client_name }}",
            }
        }
    )
    assert loc == ()
    assert "templates.quote_follow_up.email_subject: unknown merge field(s) first_name" in msg
    assert "known: amount_due, client_name, company_name" in msg


def test_a_template_syntax_error_is_refused() -> None:
    _, msg = refusal(
        templates={"quote": {"email_subject": "Quote {{ job_title", "email_body": "Hello"}}
    )
    assert "template syntax error" in msg


def test_an_unknown_purpose_or_field_is_refused() -> None:
    loc, _ = refusal(templates={"birthday": {"email_subject": "Hi", "email_body": "Hi"}})
    assert loc[:2] == ("templates", "birthday")
    loc, msg = refusal(follow_up_hours=24)
    assert loc == ("follow_up_hours",) and "Extra inputs" in msg


def test_templates_given_are_merged_over_the_defaults() -> None:
    mine = MessageTemplate(
        email_subject="Quote for {{ job_title }}", email_body="{{ quote_total }}"
    )
    settings = CommunicationSettings(templates={"quote": mine})  # type: ignore[dict-item]
    assert settings.template("quote") == mine
    assert settings.template("payment_reminder") == DEFAULT_TEMPLATES["payment_reminder"]
    assert set(settings.templates) == set(PURPOSES)


# --- merge fields and rendering ------------------------------------------------------------


def test_unknown_merge_fields() -> None:
    assert unknown_merge_fields("Hello {{ client_name }} from {{ company_name }}") == set()
    assert unknown_merge_fields("{{ first_name }} {{ client_name }} {{ total }}") == {
        "first_name",
        "total",
    }
    # Loop variables are the template's own; what they loop over must be a merge field.
    assert unknown_merge_fields("{% for line in lines %}{{ line }}{% endfor %}") == {"lines"}
    assert unknown_merge_fields("{% if job_number %}#{{ job_number }}{% endif %}") == set()
    with pytest.raises(ValueError, match="template syntax error"):
        unknown_merge_fields("{% if %}")


def test_every_default_template_uses_known_fields() -> None:
    for template in DEFAULT_TEMPLATES.values():
        for part in (template.email_subject, template.email_body, template.sms):
            assert unknown_merge_fields(part) == set()


def test_render_fills_merge_fields() -> None:
    template = MessageTemplate(
        email_subject="  Your quote:\n {{ job_title }}  ({{ quote_total }}) ",
        email_body="Hello {{ client_name }},\n\n{{ message }}\n\n{{ company_name }}\n",
        sms="{{ company_name }}: {{ quote_total }} for job {{ job_number }}",
    )
    rendered = render(
        template,
        {
            "job_title": "No cooling, unit 4",
            "quote_total": "657.50",
            "client_name": "Example Property Management",
            "company_name": "Acme HVAC",
            "message": "Your part arrives Tuesday.",
            "not_a_field": "ignored",
        },
    )
    # The subject is one line; the body keeps its lines; a field not given renders empty.
    assert rendered.subject == "Your quote: No cooling, unit 4 (657.50)"
    assert rendered.body == (
        "Hello Example Property Management,\n\nYour part arrives Tuesday.\n\nAcme HVAC"
    )
    assert rendered.sms == "Acme HVAC: 657.50 for job"


def test_render_without_an_sms_template_gives_no_sms() -> None:
    template = MessageTemplate(email_subject="Hi", email_body="Hello {{ client_name }}")
    assert render(template, {"client_name": "Ann"}).sms == ""


def test_render_does_not_autoescape() -> None:
    template = MessageTemplate(email_subject="{{ job_title }}", email_body="{{ message }}")
    rendered = render(template, {"job_title": "R&D <lab>", "message": "Tom & Jerry's"})
    assert rendered.subject == "R&D <lab>" and rendered.body == "Tom & Jerry's"


def test_a_template_is_compiled_once_and_an_edit_is_compiled_afresh() -> None:
    """The same text renders each message's own values from one compiled template; an edited
    template is its own text, so the next message uses the edit."""
    template = MessageTemplate(email_subject="Job {{ job_title }}", email_body="{{ message }}")
    before = _compiled.cache_info()
    first = render(template, {"job_title": "Boiler", "message": "one"})
    second = render(template, {"job_title": "Roof", "message": ""})
    assert (first.subject, first.body) == ("Job Boiler", "one")
    assert (second.subject, second.body) == ("Job Roof", "")
    after = _compiled.cache_info()
    assert after.hits - before.hits >= 2  # the second message compiled neither part
    edited = template.model_copy(update={"email_subject": "Your job: {{ job_title }}"})
    assert render(edited, {"job_title": "Roof"}).subject == "Your job: Roof"


CLIENT = ClientSnapshot(id=7, name="Example Client", email="client@example.com", phone="555-0101")


def _job(**changes: Any) -> JobState:
    fields: dict[str, Any] = {"stage": Stage.scheduled, "title": "No cooling", **changes}
    return JobState(slug="ab12", client=CLIENT, **fields)


def test_message_context_shows_times_in_the_company_zone() -> None:
    chicago = CommunicationSettings(company_name="Acme HVAC", timezone="America/Chicago")
    state = _job(
        number=1042,
        quote=Quote(version=2, lines=[], total=Decimal("1234.5")),
        contract_amount=Decimal("1234.50"),
        schedule=Schedule(
            technician="tess",
            window_start=datetime(2030, 1, 14, 15, 0, tzinfo=UTC),
            window_end=datetime(2030, 1, 14, 18, 0, tzinfo=UTC),
        ),
    )
    context = message_context(
        state,
        chicago,
        technician_name="Tess Turner",
        message="On our way",
        at=datetime(2030, 1, 10, 3, 0, tzinfo=UTC),  # still the 9th in Chicago
    )
    # The zone named, as every page and document shows times (models/display.py).
    assert context["window"] == "Mon 14 Jan, 09:00–12:00 CST"
    assert context["window_start"] == "Mon 14 Jan 2030, 09:00 CST"
    assert context["window_end"] == "Mon 14 Jan 2030, 12:00 CST"
    assert context["parts_eta"] == "Wed 9 Jan 2030"
    # Amounts with the currency symbol: the branding's default without one given.
    assert context["quote_total"] == "$1,234.50" and context["quote_version"] == "2"
    assert context["amount_due"] == "$1,234.50"
    assert context["job_number"] == "1042" and context["technician"] == "Tess Turner"
    assert context["company_name"] == "Acme HVAC" and context["message"] == "On our way"
    assert set(context) <= set(MERGE_FIELDS)
    # Every default template renders from it.
    for purpose in PURPOSES:
        rendered = render(chicago.template(purpose), context)
        assert rendered.subject and rendered.body


def test_message_context_in_summer_time_with_another_currency_and_company_name() -> None:
    new_york = CommunicationSettings(company_name="Jobline", timezone="America/New_York")
    state = _job(
        quote=Quote(version=1, lines=[], total=Decimal("1234.5")),
        schedule=Schedule(
            technician="tess",
            window_start=datetime(2030, 7, 16, 13, 0, tzinfo=UTC),
            window_end=datetime(2030, 7, 17, 1, 30, tzinfo=UTC),  # 21:30 the same day in New York
        ),
    )
    context = message_context(
        state,
        new_york,
        currency_symbol="€",
        company_name="Acme Heating & Air",
        quote_link="https://jobs.example.com/q/tok",
    )
    assert context["window"] == "Tue 16 Jul, 09:00–21:30 EDT"
    assert context["quote_total"] == "€1,234.50"
    assert context["company_name"] == "Acme Heating & Air"
    # Without a display name, the username stands in.
    assert context["technician"] == "tess"
    quote = render(new_york.template("quote"), context)
    assert "comes to €1,234.50." in quote.body
    assert "approve it or decline it online: https://jobs.example.com/q/tok" in quote.body
    assert (
        quote.sms == "Acme Heating & Air: your quote for No cooling is €1,234.50. "
        "Approve or decline: https://jobs.example.com/q/tok"
    )


def test_every_default_template_reads_well_with_the_symbol_and_the_zone() -> None:
    """No template writes its own symbol ("$$1,234.50") or its own zone next to a merge field."""
    settings = CommunicationSettings(timezone="America/New_York")
    state = _job(
        number=7,
        quote=Quote(version=1, lines=[], total=Decimal("1234.5")),
        contract_amount=Decimal("1234.50"),
        schedule=Schedule(
            technician="tess",
            window_start=datetime(2030, 7, 16, 13, 0, tzinfo=UTC),
            window_end=datetime(2030, 7, 16, 16, 0, tzinfo=UTC),
        ),
    )
    context = message_context(state, settings, currency_symbol="$")
    for purpose in PURPOSES:
        rendered = render(settings.template(purpose), context)
        for text in (rendered.subject, rendered.body, rendered.sms):
            assert "$$" not in text and "EDT EDT" not in text and "EDT)" not in text, text
    assert "09:00–12:00 EDT" in render(settings.template("appointment"), context).sms


def test_message_context_before_approval() -> None:
    context = message_context(_job(stage=Stage.lead), CommunicationSettings())
    assert context["job_number"] == "" and context["quote_total"] == ""
    assert context["amount_due"] == "" and "window" not in context


def test_customer_recipients() -> None:
    settings = CommunicationSettings(default_bcc="records@example.com")
    assert customer_recipients(_job(), settings) == (
        ["client@example.com"],
        ["records@example.com"],
    )
    assert customer_recipients(
        _job(), settings, to_email="records@example.com", bcc_email="sam@example.com"
    ) == (["records@example.com"], ["sam@example.com"])


# --- SMS segments ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("length", "segments"), [(0, 1), (1, 1), (160, 1), (161, 2), (306, 2), (307, 3), (459, 3)]
)
def test_gsm7_segments(length: int, segments: int) -> None:
    assert sms_segments("a" * length) == (segments, "GSM-7")


@pytest.mark.parametrize(
    ("text", "segments"),
    [
        ("€" * 80, 1),  # 160 septets
        ("€" * 81, 2),  # 162
        ("a" * 159 + "€", 2),  # 161
        ("a" * 158 + "€", 1),  # 160
        ("[" * 153, 2),  # 306
        ("[" * 153 + "a", 3),  # 307
        ("{}|~^\\", 1),
    ],
)
def test_gsm7_extension_characters_count_double(text: str, segments: int) -> None:
    assert sms_segments(text) == (segments, "GSM-7")


@pytest.mark.parametrize(
    ("length", "segments"), [(1, 1), (70, 1), (71, 2), (134, 2), (135, 3), (201, 3), (202, 4)]
)
def test_ucs2_segments(length: int, segments: int) -> None:
    # One character outside GSM-7 makes the whole message UCS-2.
    assert sms_segments("â" + "a" * (length - 1)) == (segments, "UCS-2")


def test_ucs2_counts_utf16_units() -> None:
    assert sms_segments("😀" * 35) == (1, "UCS-2")  # 70 units: each emoji is a surrogate pair
    assert sms_segments("😀" * 36) == (2, "UCS-2")
    assert sms_segments("Привет") == (1, "UCS-2")


def test_gsm7_covers_its_accented_letters() -> None:
    assert sms_segments("Café Zürich, 5 £ ¥ ñ Ä ø Å ß É @ $ _ Δ Ω")[1] == "GSM-7"


GSM_BASIC = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"  # noqa: E501
GSM_EXTENSION = "^{}\\[~]|€"


@given(st.text(alphabet=GSM_BASIC, max_size=400), st.text(alphabet=GSM_EXTENSION, max_size=100))
def test_gsm7_segments_match_the_septet_count(basic: str, extension: str) -> None:
    text = basic + extension
    septets = len(basic) + 2 * len(extension)
    expected = 1 if septets <= 160 else math.ceil(septets / 153)
    assert sms_segments(text) == (expected, "GSM-7")


@given(st.text(min_size=1, max_size=300).filter(lambda t: "â" not in t).map(lambda t: "â" + t))
def test_ucs2_segments_match_the_utf16_units(text: str) -> None:
    units = len(text.encode("utf-16-le")) // 2
    expected = 1 if units <= 70 else math.ceil(units / 67)
    assert sms_segments(text) == (expected, "UCS-2")


# --- quotes with options and supplier requests (issue 11) ---------------------------------------


def _quoted(**drafted: Any) -> JobState:
    """A job whose quote was drafted and sent through the rules, and an RFQ made."""
    from tests.models.test_lifecycle_table import OFFICE, reach

    job = reach(Stage.prospect)
    job.do(OFFICE, "quote_drafted", **drafted)
    job.do(OFFICE, "quote_sent")
    job.do(
        OFFICE,
        "supplier_quote_requested",
        supplier="Northside HVAC Supply",
        supplier_email="orders@northside.example.com",
        po_number="PO-2291",
        lines=[
            {"sku": "CAP-455", "description": "Run capacitor, 45/5 uF", "quantity": 2},
            {"description": "Contactor", "quantity": "1.5"},
        ],
        notes="Please quote by Friday.",
    )
    return job.state


OPTIONS = [
    {"name": "Repair", "lines": [{"description": "Repair", "quantity": 1, "unit_price": "200"}]},
    {"name": "Replace", "lines": [{"description": "Unit", "quantity": 1, "unit_price": "900"}]},
]


def test_quote_total_lists_each_option_until_one_is_chosen() -> None:
    from models.lifecycle import Actor, Role, apply

    settings = CommunicationSettings()
    state = _quoted(options=OPTIONS, tax_rate="10")
    context = message_context(state, settings)
    assert context["quote_total"] == "Repair $220.00, Replace $990.00"
    body = render(settings.template("quote"), context).body
    assert "comes to Repair $220.00, Replace $990.00." in body
    at = datetime(2026, 11, 24, tzinfo=UTC)
    approved = apply(
        state, _event("quote_approved", option="better"), Actor(username="o", role=Role.office), at
    )
    assert message_context(approved.state, settings)["quote_total"] == "$990.00"  # type: ignore[union-attr]
    # one option: its total, tax included
    single = _quoted(lines=OPTIONS[1]["lines"], tax_rate="10")
    assert message_context(single, settings)["quote_total"] == "$990.00"


def _event(event_type: str, **fields: Any) -> Any:
    from pydantic import TypeAdapter

    from models.events import Event

    return TypeAdapter(Event).validate_python({"type": event_type, **fields})


def test_the_supplier_quote_request_renders_its_lines() -> None:
    settings = CommunicationSettings(company_name="Acme HVAC")
    state = _quoted(lines=OPTIONS[0]["lines"])
    context = message_context(state, settings, po_number="PO-2291")
    assert (context["supplier_name"], context["po_number"]) == ("Northside HVAC Supply", "PO-2291")
    rendered = render(settings.template("supplier_quote_request"), context)
    assert rendered.subject == "Request for quote PO-2291 from Acme HVAC"
    assert rendered.body.startswith("Hello Northside HVAC Supply,")
    assert "under PO PO-2291:" in rendered.body
    assert "- 2 x Run capacitor, 45/5 uF (SKU CAP-455)\n- 1.5 x Contactor\n" in rendered.body
    assert "Please quote by Friday." in rendered.body  # the request's notes as the message
    assert not rendered.sms  # email only
    # another PO (or none): the request's fields stay empty
    for other in (None, "PO-1"):
        empty = message_context(state, settings, po_number=other)
        assert empty["supplier_name"] == empty["po_number"] == empty["supplier_lines"] == ""


def test_the_office_hears_of_an_online_answer() -> None:
    from models.lifecycle import Actor, Role, apply
    from models.notifications import for_event

    settings = CommunicationSettings(company_name="Acme HVAC")
    state = _quoted(options=OPTIONS)
    customer = Actor(username="customer", role=Role.customer)
    at = datetime(2026, 11, 24, tzinfo=UTC)
    answer = _event(
        "quote_approved",
        option="better",
        quote_version=1,
        signature_name="Ann Customer",
        ip_address="203.0.113.9",
    )
    after = apply(state, answer, customer, at).state  # type: ignore[union-attr]
    (note,) = for_event(answer, state, after)
    assert (note.purpose, note.to_office, note.sms) == ("quote_answered", True, "no")
    assert (
        note.message
        == "Ann Customer approved the quote online, choosing Replace. The job is approved."
    )
    context = message_context(
        after.model_copy(update={"number": 1042}), settings, message=note.message
    )
    rendered = render(settings.template("quote_answered"), context)
    assert rendered.subject == "No heat: the customer answered quote 1 online"
    assert rendered.body.startswith("Ann Customer approved the quote online, choosing Replace.")
    assert "number 1042" in rendered.body and "Quote: $900.00." in rendered.body
    # told by the office (no ip_address): nobody needs alerting
    told = _event("quote_approved", option="good")
    assert (
        for_event(told, state, apply(state, told, Actor(username="o", role=Role.office), at).state)
        == []
    )  # type: ignore[union-attr]
    declined = _event("quote_declined", reason="too dear", ip_address="203.0.113.9")
    (note,) = for_event(declined, state, state)
    assert note.message == "The customer declined the quote online: too dear"


def test_the_new_templates_use_known_fields_and_pass_the_settings_check() -> None:
    from api.settings.service import check_templates_render

    for purpose in ("supplier_quote_request", "quote_answered"):
        template = DEFAULT_TEMPLATES[purpose]
        for text in (template.email_subject, template.email_body, template.sms or ""):
            assert unknown_merge_fields(text) == set()
    check_templates_render(CommunicationSettings())
    custom = CommunicationSettings.model_validate(
        {
            "templates": {
                "supplier_quote_request": {
                    "email_subject": "RFQ {{ po_number }}",
                    "email_body": "{{ supplier_name }}: {{ supplier_lines }} {{ quote_link }}",
                }
            }
        }
    )
    check_templates_render(custom)
