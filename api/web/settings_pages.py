"""(Being built: issue 9.)"""

from __future__ import annotations

from api.web.pages import page_router

router = page_router()
