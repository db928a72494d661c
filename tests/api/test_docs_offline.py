"""/docs and /redoc work with no network: every file they load is served by the app itself.

The pages need neither the database nor Temporal, so the app is built without starting them
(no lifespan): only routing, middleware and the static files are exercised.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from urllib.parse import urljoin, urlsplit

import httpx
import pytest

from api.app import create_app
from core.config import Settings

ORIGIN = "http://jobline.test"
# src=, href= and ReDoc's spec-url= attributes, and Swagger's url: '...' in its inline script.
REFERENCE = re.compile(
    r"""(?:src|href|spec-url)\s*=\s*["']([^"']+)["']|\burl\s*:\s*["']([^"']+)["']"""
)
EXPECTED_TYPE = {
    ".js": "javascript",
    ".css": "text/css",
    ".png": "image/png",
    ".json": "application/json",
}


@pytest.fixture(scope="module")
async def http() -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(Settings(environment="test"))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=ORIGIN) as http:
        yield http


def _references(html: str) -> list[str]:
    return [a or b for a, b in REFERENCE.findall(html)]


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_docs_page_loads_only_same_origin_assets_that_are_served(
    http: httpx.AsyncClient, page: str
) -> None:
    response = await http.get(page)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    assert "cdn" not in html.lower() and "googleapis" not in html.lower()

    references = _references(html)
    kinds = {urlsplit(ref).path.rsplit(".", 1)[-1] for ref in references}
    assert {"js", "json"} <= kinds, f"expected a script and the OpenAPI document: {references}"
    if page == "/docs":
        assert "css" in kinds
    for ref in references:
        absolute = urljoin(ORIGIN + page, ref)
        assert urlsplit(absolute).netloc == urlsplit(ORIGIN).netloc, f"{ref} is off-site"
        asset = await http.get(absolute)
        assert asset.status_code == 200, f"{ref}: {asset.status_code}"
        suffix = "." + urlsplit(absolute).path.rsplit(".", 1)[-1]
        assert EXPECTED_TYPE[suffix] in asset.headers["content-type"], (
            f"{ref}: {asset.headers['content-type']}"
        )
        assert len(asset.content) > 100, f"{ref} is empty"


async def test_a_missing_asset_is_404_not_the_page(http: httpx.AsyncClient) -> None:
    response = await http.get("/docs-assets/no-such-file.js")
    assert response.status_code == 404
