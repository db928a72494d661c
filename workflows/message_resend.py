"""A message a person chose to send again (`POST /api/v1/outbox/{id}/resend`), delivered on its
own, like the job workflow delivers its messages: the same activity, timeouts and retries.

The API starts one per resend, its id named by the new message's idempotency key (unique, and
unlike the row's number not reused by another database on the same Temporal), so a start that is
repeated finds the first one.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from models.messages import DELIVER_MESSAGE
    from workflows.deliveries import DELIVERY_OPTIONS


def resend_workflow_id(idempotency_key: str) -> str:
    return f"resend-{idempotency_key}"


@workflow.defn(name="MessageResend")
class MessageResendWorkflow:
    @workflow.run
    async def run(self, message_id: int) -> str:
        status: str = await workflow.execute_activity(
            DELIVER_MESSAGE, message_id, **DELIVERY_OPTIONS
        )
        return status
