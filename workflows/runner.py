"""The workflow sandbox as Jobline's workers and replayers configure it.

Templates (jinja2) and the GSM-7 codec are deterministic pure-Python libraries, but jinja2 imports
parts of itself lazily and builds a thread lock on import, which the sandbox refuses: they are
passed through instead of re-imported per workflow.
"""

from __future__ import annotations

from temporalio.worker import UnsandboxedWorkflowRunner, WorkflowRunner
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

PASSTHROUGH = ("jinja2", "markupsafe", "gsm0338")


def workflow_runner(sandboxed: bool = True) -> WorkflowRunner:
    """The sandbox unless a worker is configured without it (`JOBLINE_WORKER_SANDBOX=false`, for
    its CPU); tests and replays always take the default."""
    if not sandboxed:
        return UnsandboxedWorkflowRunner()
    return SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH)
    )
