"""Closeout, run by the job workflow alongside the job once `job_completed` is accepted
(DESIGN.md §6): render the work receipt, sync the portal snapshot (and POST it to the external
portal when a webhook is configured), then send the closeout notification by the configured
channel, the email with the receipt attached and the SMS with the portal link.

The technician's `job_completed` answers as soon as the job is completed; this follows within
seconds, and a failure here never fails the job.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from models import notifications
    from models.closeout import JobCloseout
    from models.lifecycle import JobState
    from models.messages import QueueMessages
    from models.portal import POST_PORTAL_WEBHOOK, SYNC_PORTAL, PortalSync, PortalSynced
    from workflows import documents
    from workflows.deliveries import Deliveries

SYNC_TIMEOUT = timedelta(seconds=30)
# A database write: retried until it goes through.
SYNC_RETRY = RetryPolicy(maximum_interval=timedelta(minutes=1))
WEBHOOK_TIMEOUT = timedelta(seconds=60)
# The receiver may be down for a while: about 4 hours of tries (see activities/closeout.py, which
# records the last attempt as failed rather than raising).
WEBHOOK_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=10),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(hours=1),
    maximum_attempts=10,
)


async def close_out(
    state: JobState, closeout: JobCloseout, deliveries: Deliveries, patient: bool = False
) -> None:
    """`patient` (from the job's one-writer patch on): the receipt email waits for its PDF."""
    try:
        # The render is a regular activity: once it has been scheduled, `job_completed` is in
        # history, so what follows may be local activities (no round trip to the server each)
        # without ever acting on an event the server did not keep.
        receipt = await documents.render(state, "work_receipt", closeout.labels(), patient=patient)
        synced: PortalSynced = await deliveries.local.execute(
            SYNC_PORTAL,
            PortalSync(state=state, closeout=closeout, receipt_document_id=receipt),
            result_type=PortalSynced,
            start_to_close_timeout=SYNC_TIMEOUT,
            retry_policy=SYNC_RETRY,
        )
        if closeout.webhook:
            deliveries.track(
                workflow.start_activity(
                    POST_PORTAL_WEBHOOK,
                    synced.snapshot_id,
                    result_type=str,
                    start_to_close_timeout=WEBHOOK_TIMEOUT,
                    retry_policy=WEBHOOK_RETRY,
                )
            )
        note = notifications.for_closeout(state, closeout.channel)
        await deliveries.send(
            QueueMessages(
                state=state, notification=note, document_ids=[receipt] if receipt else []
            ),
            committed=True,
            bounded=patient,
        )
    except ActivityError as failed:
        workflow.logger.error(
            "closeout did not finish",
            extra={"job_slug": state.slug, "error": str(failed.cause or failed)},
        )
