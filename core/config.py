"""Settings from `JOBLINE_*` environment variables or `.env` (DESIGN.md §9)."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_SECRET = "change-me-outside-development"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="JOBLINE_", env_file=".env", extra="ignore")

    environment: Literal["development", "production", "test"] = "development"
    data_dir: Path = Path(".data")
    # Empty means the embedded SQLite file under data_dir.
    database_url: str = ""
    temporal_address: str = "127.0.0.1:7233"
    temporal_namespace: str = "default"
    # Temporal Cloud (or any TLS cluster): an API key implies TLS.
    temporal_tls: bool = False
    temporal_api_key: str = ""
    task_queue: str = "jobline"
    public_url: str = "http://127.0.0.1:8000"
    secret_key: str = DEFAULT_SECRET
    email_backend: Literal["outbox", "smtp", "sendgrid"] = "outbox"
    sms_backend: Literal["outbox", "twilio"] = "outbox"
    email_from: str = "Jobline <no-reply@jobline.example>"
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 25
    smtp_username: str = ""
    smtp_password: str = ""
    smtp_starttls: bool = False
    smtp_tls: bool = False
    sendgrid_api_key: str = ""
    sendgrid_base_url: str = "https://api.sendgrid.com"
    twilio_account_sid: str = ""
    twilio_auth_token: str = ""
    twilio_from_number: str = ""
    twilio_base_url: str = "https://api.twilio.com"
    # Seconds a provider call may take before it counts as a (retried) timeout.
    provider_timeout: float = 20.0
    # Messages per second each worker process hands to the email / SMS provider (None: no
    # limit). Per worker: with several workers, set the provider's limit divided by their number.
    email_rate_per_second: float | None = Field(default=None, gt=0)
    sms_rate_per_second: float | None = Field(default=None, gt=0)
    # The closeout webhook may go to loopback, private and link-local addresses (a receiver on
    # the same host or network). Off: the worker must not be steered at what only it can reach.
    webhook_allow_private: bool = False
    log_level: str = "INFO"
    # Job workflows a worker keeps in memory between their tasks (the SDK's max_cached_workflows,
    # whose default is 1,000). Each costs ~0.35 MiB; one not cached replays its history on its
    # next task, which for a job is milliseconds. Most jobs wait days between events, so the
    # cache, not the number of open jobs, sets a worker's size (bench/scale.py, issue 12).
    worker_workflow_cache: int = Field(default=100, ge=0)
    # Seconds the worker's PDF processes may sit with nothing to render before they stop (the
    # next document starts them again, ~0.6 s on that one); 0 keeps them up. See activities/pdf.py.
    worker_pdf_idle_seconds: float = Field(default=120.0, ge=0)
    # Run the workflows in Temporal's sandbox, which stops a non-deterministic call (the clock,
    # randomness, I/O) when it happens and re-imports the workflow modules for every run. Off,
    # the worker uses ~13% less CPU (bench/events.py, deploy/README.md "Sizing workers"); the
    # test suite and the replay of kept histories always run sandboxed, which is where such a
    # call is caught before it ships.
    worker_sandbox: bool = True
    # host:port for the worker's Prometheus endpoint (Temporal SDK metrics); empty: none.
    worker_metrics_address: str = ""
    # Request bodies (api/body_guard.py): the most bytes a JSON route reads (the logo upload has
    # its own 1 MiB), and how deeply its JSON may nest.
    api_max_body_bytes: int = Field(default=256 * 1024, ge=1024)
    api_max_json_depth: int = Field(default=64, ge=8, le=500)
    # Back-pressure (api/admission.py): requests of one API process that may wait on jobs'
    # workflows at once, and how long one more waits for a turn before its 503.
    api_max_in_flight: int = Field(default=64, ge=1)
    api_admission_wait_s: float = Field(default=2.0, ge=0)
    # How long a request waits for a job's workflow to take its event before the API answers
    # 503 (the event may still be applied: a retry with the same Idempotency-Key is safe).
    api_event_timeout_s: float = Field(default=15.0, gt=0)

    @field_validator("email_rate_per_second", "sms_rate_per_second", mode="before")
    @classmethod
    def _empty_rate_is_unlimited(cls, value: object) -> object:
        return None if isinstance(value, str) and value.strip() == "" else value

    @model_validator(mode="after")
    def _no_default_secret_in_production(self) -> Settings:
        if self.environment == "production" and self.secret_key == DEFAULT_SECRET:
            raise ValueError("set JOBLINE_SECRET_KEY: the default secret is for development only")
        return self

    @cached_property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'jobline.db').resolve()}"
