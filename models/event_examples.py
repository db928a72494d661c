"""One example body for each event type: shown in the OpenAPI document (each event's schema and
the "Try it out" choices of POST /api/v1/jobs/{slug}/events).

Each validates as a client's input (tests/api/test_event_examples.py). The people are the demo
users `make dev` creates; the dates are in models.bounds' range. Pure data: no I/O.
"""

from __future__ import annotations

from typing import Any

EVENT_EXAMPLES: dict[str, dict[str, Any]] = {
    # First: Swagger's "Try it out" pre-fills the first example, and a note is welcome at any stage.
    "note_added": {"type": "note_added", "text": "Customer asked us to call before arriving."},
    "job_created": {
        "type": "job_created",
        "client_id": 1,
        "title": "No cooling, unit 4",
        "description": "Rooftop unit blowing warm air since Monday.",
        "source": "incoming_call",
        "priority": "standard",
        "site_address": "12 Harbor Road, Springfield",
    },
    "owner_assigned": {"type": "owner_assigned", "owner": "olga"},
    "lead_qualified": {"type": "lead_qualified"},
    "quote_drafted": {
        "type": "quote_drafted",
        "lines": [
            {
                "description": "Run capacitor, 45/5 uF",
                "quantity": 1,
                "unit_price": "185.00",
                "sku": "CAP-455",
            },
            {"description": "Labour (hours)", "quantity": 1.5, "unit_price": "120.00"},
        ],
        "discount": {"percent": "5", "reason": "Returning customer"},
        "valid_until": "2027-04-30",
        "notes": "Price held for 30 days.",
    },
    "quote_sent": {
        "type": "quote_sent",
        "to_email": "rivera@example.com",
        "sms": False,
        "approval_expected_at": "2027-04-10T17:00:00Z",
    },
    "quote_approved": {"type": "quote_approved"},
    "approval_requested": {
        "type": "approval_requested",
        "notes": "Discount above 15%: needs a manager.",
    },
    "approval_granted": {"type": "approval_granted"},
    "approval_denied": {"type": "approval_denied", "reason": "Margin too thin; quote list price."},
    "quote_declined": {"type": "quote_declined", "reason": "Customer chose another contractor."},
    "emergency_dispatch": {
        "type": "emergency_dispatch",
        "notes": "No heat, elderly resident: go today.",
    },
    "parts_ordered": {
        "type": "parts_ordered",
        "parts": [
            {
                "sku": "CAP-455",
                "description": "Run capacitor, 45/5 uF",
                "quantity": 1,
                "supplier": "Metro HVAC Supply",
                "po_number": "PO-10442",
                "expected_delivery": "2027-04-14",
            }
        ],
    },
    "parts_delivered": {"type": "parts_delivered", "skus": ["CAP-455"]},
    "job_scheduled": {
        "type": "job_scheduled",
        "technician": "tess",
        "window_start": "2027-04-15T13:00:00Z",
        "window_end": "2027-04-15T15:00:00Z",
    },
    "checklist_completed": {
        "type": "checklist_completed",
        "parts_verified": True,
        "check_in_phone": "+1 555 0100",
        "pricing_discussion": "allowed",
        "platinum_protocol_acknowledged": False,
    },
    "tech_dispatched": {"type": "tech_dispatched", "notify_customer": True},
    "tech_checked_in": {"type": "tech_checked_in"},
    "job_completed": {
        "type": "job_completed",
        "work_performed": "Replaced the run capacitor; unit cooling at 18 °C supply air.",
        "notes": "Filter due for change next visit.",
        "parts_used": [{"sku": "CAP-455", "quantity": 1}],
        "fields": {},
    },
    "job_incomplete": {
        "type": "job_incomplete",
        "reason": "wrong_parts",
        "notes": "Capacitor delivered is 40/5 uF; needs 45/5.",
    },
    "invoice_sent": {
        "type": "invoice_sent",
        "billing_email": "accounts@example.com",
        "po_number": "PO-7781",
        "submitted_to_client_portal": False,
    },
    "evidence_verified": {
        "type": "evidence_verified",
        "documents": True,
        "notes": True,
        "parts_usage": True,
        "photos": True,
        "customer_communication": True,
    },
    "payment_recorded": {
        "type": "payment_recorded",
        "amount": "365.00",
        "method": "card",
        "paid_on_site": False,
    },
    "job_canceled": {"type": "job_canceled", "reason": "Customer sold the property."},
    "contact_updated": {
        "type": "contact_updated",
        "email": "m.rivera@example.com",
        "phone": "+1 555 0142",
        "notes": "Prefers text messages.",
    },
    "communication_logged": {
        "type": "communication_logged",
        "channel": "call",
        "direction": "incoming",
        "summary": "Customer confirmed Tuesday's window.",
    },
    "supplier_quote_requested": {
        "type": "supplier_quote_requested",
        "supplier": "Northside HVAC Supply",
        "supplier_email": "orders@northside.example.com",
        "po_number": "PO-2291",
        "lines": [{"sku": "CAP-455", "description": "Run capacitor, 45/5 uF", "quantity": 2}],
        "notes": "Please quote by Friday with lead time.",
    },
    "customer_update_sent": {
        "type": "customer_update_sent",
        "message": "Your part has arrived; we will call to book the visit.",
        "bcc_me": True,
        "sms": False,
    },
}
