"""Starting the delivery of a resent message: a `MessageResend` workflow of its own."""

from __future__ import annotations

from temporalio.client import Client as TemporalClient
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError

from api.errors import Unavailable
from models.tables import OutboxMessage
from workflows.message_resend import MessageResendWorkflow, resend_workflow_id


async def start(temporal: TemporalClient, task_queue: str, message: OutboxMessage) -> None:
    """Starts the delivery of a resent message; a delivery started before (a repeated call) is
    left to run, never started twice."""
    assert message.id is not None
    message_id = message.id
    try:
        await temporal.start_workflow(
            MessageResendWorkflow.run,
            message_id,
            id=resend_workflow_id(message.idempotency_key),
            task_queue=task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            static_summary=f"resend of message {message_id}",
        )
    except WorkflowAlreadyStartedError:
        pass
    except RPCError as rpc:
        raise Unavailable(
            f"message {message_id} is queued, but the workflow service did not take its "
            f"delivery: {rpc.message}; send the same request again to start it"
        ) from None
