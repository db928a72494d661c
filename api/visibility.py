"""Who sees which jobs and clients (DESIGN.md §3), applied in the query itself: what a user may not
see is simply not found.

A technician sees the jobs assigned to them now (a job reassigned to someone else, or sent back
to be rescheduled, is gone for them) and the clients of those jobs, without the office's internal
notes. Everyone else on the staff sees every job and every client.
"""

from __future__ import annotations

from typing import TypeVar

from sqlmodel import col, select
from sqlmodel.sql.expression import SelectOfScalar

from models.lifecycle import Role
from models.tables import Client, Job, User

Row = TypeVar("Row")


def jobs(query: SelectOfScalar[Row], user: User) -> SelectOfScalar[Row]:
    """`query` (over `Job`) narrowed to the jobs this user may see."""
    if user.role == Role.technician:
        return query.where(Job.assigned_tech == user.username)
    return query


def clients(query: SelectOfScalar[Row], user: User) -> SelectOfScalar[Row]:
    """`query` (over `Client`) narrowed to the clients this user may see."""
    if user.role == Role.technician:
        return query.where(col(Client.id).in_(jobs(select(Job.client_id), user)))
    return query


def sees_client_notes(user: User) -> bool:
    """The office's notes on a client are internal: not for technicians."""
    return user.role != Role.technician
