from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from api.deps import CurrentUser
from api.errors import error_responses

# Any signed-in user reads who they are: no role to refuse.
router = APIRouter(prefix="/api/v1/users", tags=["users"], responses=error_responses(401, 503))


class Me(BaseModel):
    username: str
    email: str
    role: str


@router.get("/me", response_model=Me)
async def me(user: CurrentUser) -> Me:
    return Me(username=user.username, email=user.email, role=user.role)
