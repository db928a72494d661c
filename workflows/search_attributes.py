"""The custom search attributes on every job workflow (DESIGN.md §7). No personal data here."""

from __future__ import annotations

from temporalio.common import SearchAttributeKey

JOB_STAGE = SearchAttributeKey.for_keyword("JobStage")
JOB_MILESTONE = SearchAttributeKey.for_keyword("JobMilestone")
JOB_NUMBER = SearchAttributeKey.for_int("JobNumber")
CLIENT_ID = SearchAttributeKey.for_int("ClientId")
JOB_OWNER = SearchAttributeKey.for_keyword("JobOwner")
ASSIGNED_TECH = SearchAttributeKey.for_keyword("AssignedTech")
WAITING_ON = SearchAttributeKey.for_keyword("WaitingOn")
STAGE_ENTERED_AT = SearchAttributeKey.for_datetime("StageEnteredAt")
NEXT_REMINDER_AT = SearchAttributeKey.for_datetime("NextReminderAt")
STUCK = SearchAttributeKey.for_bool("Stuck")
CONTRACT_AMOUNT = SearchAttributeKey.for_float("ContractAmount")

ALL = (
    JOB_STAGE,
    JOB_MILESTONE,
    JOB_NUMBER,
    CLIENT_ID,
    JOB_OWNER,
    ASSIGNED_TECH,
    WAITING_ON,
    STAGE_ENTERED_AT,
    NEXT_REMINDER_AT,
    STUCK,
    CONTRACT_AMOUNT,
)

# `temporal server start-dev --search-attribute Name=Type` spelling of each key.
_CLI_TYPE = {
    "KEYWORD": "Keyword",
    "INT": "Int",
    "DATETIME": "Datetime",
    "BOOL": "Bool",
    "DOUBLE": "Double",
}


def dev_server_flags() -> list[str]:
    flags: list[str] = []
    for key in ALL:
        flags += ["--search-attribute", f"{key.name}={_CLI_TYPE[key.indexed_value_type.name]}"]
    return flags
