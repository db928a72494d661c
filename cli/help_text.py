"""What `jobline --help` tells beyond the options: the JOBLINE_* variables
(core.config.Settings) each command reads.

The names come from Settings' own fields, so a renamed field fails here at import rather than
leaving the help wrong; tests/cli/test_cli_help.py checks every field is named somewhere.
"""

from __future__ import annotations

from core.config import Settings

_PREFIX = Settings.model_config.get("env_prefix", "")


def _vars(*fields: str) -> tuple[str, ...]:
    for field in fields:
        if field not in Settings.model_fields:
            raise KeyError(f"{field} is not a core.config.Settings field")
    return tuple(f"{_PREFIX}{field}".upper() for field in fields)


# Every command builds Settings, which refuses the default secret in production.
_BASE = ("environment", "secret_key")
_DATABASE = ("data_dir", "database_url")
_TEMPORAL = (
    "temporal_address",
    "temporal_namespace",
    "temporal_tls",
    "temporal_api_key",
    "task_queue",
)
_DELIVERY = (
    "email_backend",
    "sms_backend",
    "email_from",
    "smtp_host",
    "smtp_port",
    "smtp_username",
    "smtp_password",
    "smtp_starttls",
    "smtp_tls",
    "sendgrid_api_key",
    "sendgrid_base_url",
    "twilio_account_sid",
    "twilio_auth_token",
    "twilio_from_number",
    "twilio_base_url",
    "provider_timeout",
    "email_rate_per_second",
    "sms_rate_per_second",
)
_API_LIMITS = (
    "api_max_body_bytes",
    "api_max_json_depth",
    "api_max_in_flight",
    "api_admission_wait_s",
    "api_event_timeout_s",
)

READS: dict[str, tuple[str, ...]] = {
    "api": _vars(
        *_BASE,
        *_DATABASE,
        *_TEMPORAL,
        "public_url",
        "webhook_allow_private",
        "log_level",
        *_API_LIMITS,
    ),
    "worker": _vars(
        *_BASE,
        *_DATABASE,
        *_TEMPORAL,
        "public_url",
        *_DELIVERY,
        "webhook_allow_private",
        "log_level",
        "worker_workflow_cache",
        "worker_pdf_idle_seconds",
        "worker_sandbox",
        "worker_metrics_address",
    ),
    "migrate": _vars(*_BASE, *_DATABASE),
    "user": _vars(*_BASE, *_DATABASE),
    # dev reads these itself; its API and worker read the rest (see `jobline api --help`).
    "dev": _vars("data_dir", "secret_key", "public_url"),
}


# Secrets' defaults are placeholders, not advice: the help does not print them.
_UNSHOWN = {
    "secret_key",
    "temporal_api_key",
    "smtp_password",
    "sendgrid_api_key",
    "twilio_auth_token",
}


def _line(name: str) -> str:
    field = name.removeprefix(_PREFIX.upper()).lower()
    default = Settings.model_fields[field].default
    if field in _UNSHOWN or default in ("", None):
        return f"  {name}"
    shown = str(default).lower() if isinstance(default, bool) else default
    return f"  {name} (default: {shown})"


def reads(command: str) -> str:
    """The epilog of a command's help: the variables it reads (also from a .env file)."""
    names = "\n".join(_line(name) for name in READS[command])
    return f"environment (or .env) read by this command:\n{names}"
