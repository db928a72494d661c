"""An outbox message's statuses, and what a person may do about one.

    queued -> sending -> sent | failed | unknown      (a provider: SMTP, SendGrid, Twilio)
    queued -> captured                                (the outbox backend: nothing leaves)
    unknown | failed -> resent                        (a person queued a copy, a new message)
    unknown | failed -> sent                          (a person confirmed the customer got it)

`sending` is committed immediately before the message is handed to the provider. A delivery
that finds its message still `sending` knows an earlier attempt died after that moment, so the
provider may have the message: unless that attempt recorded the provider's answer, the message
becomes `unknown` and waits for a person, rather than risk a second copy.
"""

from __future__ import annotations

from typing import Literal

from models.communications import PURPOSES as TEMPLATE_PURPOSES

Status = Literal["queued", "sending", "sent", "failed", "captured", "unknown", "resent"]
STATUSES: tuple[Status, ...] = (
    "queued",
    "sending",
    "sent",
    "failed",
    "captured",
    "unknown",
    "resent",
)
# No delivery changes these again.
FINISHED: frozenset[str] = frozenset({"sent", "failed", "captured", "unknown", "resent"})
# The provider may or may not have it: a person has to look (the job and the outbox say so).
IN_DOUBT = "unknown"
# What a person may resend or confirm as received.
ACTIONABLE: frozenset[str] = frozenset({"unknown", "failed"})

# What a message is for: the purposes with templates (models/communications.py), and those the
# resulting workflow writes itself (activities/resulting.py: the result email to the sales team,
# the owner's reminder of an unresulted job).
PURPOSES: tuple[str, ...] = (*TEMPLATE_PURPOSES, "result", "unresulted_reminder")
