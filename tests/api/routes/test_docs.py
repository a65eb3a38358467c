"""`/docs` works without internet: every asset it loads is served by the API itself."""

from __future__ import annotations

import re

import httpx


async def test_the_docs_load_nothing_from_outside(client: httpx.AsyncClient) -> None:
    html = (await client.get("/docs")).text
    assets = re.findall(r"""(?:src|href)=["']([^"']+)["']""", html) + re.findall(r"""url: ?["']([^"']+)["']""", html)
    assert assets, html
    assert not [asset for asset in assets if asset.startswith(("http:", "https:", "//"))], assets
    for asset in assets:
        response = await client.get(asset)
        assert response.status_code == 200, asset
        assert len(response.content) > 0


async def test_the_openapi_document_the_docs_read_is_served(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    assert document["openapi"].startswith("3.1")
    assert "/api/ops/{name}" in document["paths"]
