"""The board, `/jobs` (being built: issue 9 item 2). For now: who is signed in."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import Response

from api.web.pages import Viewer, page_router, render

router = page_router()


@router.get("/jobs")
async def board(request: Request, viewer: Viewer) -> Response:
    return render(request, "jobs.html", viewer)
