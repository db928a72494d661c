"""Connecting to Temporal the same way everywhere (pydantic data converter)."""

from __future__ import annotations

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.runtime import Runtime

from core.config import Settings


def workflow_id(slug: str) -> str:
    return f"job-{slug}"


async def connect(settings: Settings, runtime: Runtime | None = None) -> Client:
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=pydantic_data_converter,
        runtime=runtime,
        tls=settings.temporal_tls or bool(settings.temporal_api_key),
        api_key=settings.temporal_api_key or None,
    )
