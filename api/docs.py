"""The interactive API docs, /docs (Swagger UI) and /redoc, served wholly by this app.

FastAPI's own pages load their scripts from a CDN, so offline they are blank. The files come
from the `fastapi-offline` package (a PyPI dependency: no third-party code in this repository);
only its static folder is used, mounted under ASSETS.
"""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS = "/docs-assets"
ASSET_DIR = Path(fastapi_offline.__file__).parent / "static"
# ReDoc styles itself inline and runs its search index in a blob: worker.
REDOC_POLICY = (
    "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "worker-src 'self' blob:; font-src 'self' data:"
)


def install(app: FastAPI) -> None:
    """Call on an app built with docs_url=None and redoc_url=None."""
    openapi_url = app.openapi_url or "/openapi.json"
    app.mount(ASSETS, StaticFiles(directory=ASSET_DIR), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{app.title} API",
            swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS}/favicon.png",
        )

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        page = get_redoc_html(
            openapi_url=openapi_url,
            title=f"{app.title} API",
            redoc_js_url=f"{ASSETS}/redoc.standalone.js",
            redoc_favicon_url=f"{ASSETS}/favicon.png",
            with_google_fonts=False,  # fonts from a CDN too; the system's serve
        )
        # ReDoc's menu shows a Redocly logo fetched from its CDN (hard-coded, hidden if it fails
        # to load). The policy keeps the browser from asking: everything comes from here.
        page.headers["Content-Security-Policy"] = REDOC_POLICY
        return page
