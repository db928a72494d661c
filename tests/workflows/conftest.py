"""Fixtures shared by the workflow tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from core.dev_server import dynamic_config_flags
from tests.conftest import DEV_SERVER_STARTUP, venv_binary
from workflows import search_attributes as sa

# Instead of the thousands of a real server: continue-as-new in a test takes a few dozen events.
CAN_AFTER_EVENTS = 40


@pytest.fixture(scope="module")
async def short_history_env() -> AsyncIterator[WorkflowEnvironment]:
    """A dev server of its own that suggests continue-as-new after 40 history events."""
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=venv_binary("temporal"),
        dev_server_startup_timeout=DEV_SERVER_STARTUP,
        data_converter=pydantic_data_converter,
        search_attributes=sa.ALL,
        dev_server_extra_args=[
            *dynamic_config_flags(),
            "--dynamic-config-value",
            f"limit.historyCount.suggestContinueAsNew={CAN_AFTER_EVENTS}",
        ],
    )
    async with env:
        yield env
