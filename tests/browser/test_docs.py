"""The pages in a real browser: headless Chromium (Debian's package) driven by Playwright, offline.

The API runs as `komas api` on a real socket; every request the page makes must go to it (nothing
from a CDN), the page must render, and the browser console must stay free of errors.
"""

from __future__ import annotations

import asyncio
import shutil
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.api.conftest import migrate
from tests.api.test_server import komas_api, komas_env

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="Chromium is not installed (Debian's chromium package; .ci/run installs it)"
)


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory, redis_url: str) -> Iterator[str]:
    url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('browser')}/komas.db"
    asyncio.run(migrate(url))
    env = komas_env(database_url=url, redis_url=redis_url, queue=f"komas:test:{uuid.uuid4().hex}", log_level="WARNING")
    with komas_api(env, ready_path="/openapi.json") as port:
        yield f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    playwright_api = pytest.importorskip("playwright.sync_api")
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        try:
            yield browser
        finally:
            browser.close()


def test_the_docs_render_offline_without_console_errors(base_url: str, browser: Any) -> None:
    page = browser.new_page()
    errors: list[str] = []
    outside: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on(
        "request", lambda request: None if request.url.startswith((base_url, "data:")) else outside.append(request.url)
    )
    page.goto(base_url + "/docs")
    heading = page.wait_for_selector(".swagger-ui .info .title", timeout=20_000)
    assert "Komas persistence core" in heading.inner_text()
    assert page.locator(".opblock-summary-path", has_text="/api/ops/{name}").count() == 1
    page.wait_for_load_state("networkidle")
    assert outside == []
    assert errors == []
    page.close()
