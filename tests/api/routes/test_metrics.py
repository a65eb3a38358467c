"""`GET /metrics` of the API: requests by route template (never an id), method and status."""

from __future__ import annotations

import asyncio
import shutil
from asyncio.subprocess import PIPE

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.api.conftest import AUTH


def requests_of(body: str) -> dict[tuple[str, str, str], float]:
    found: dict[tuple[str, str, str], float] = {}
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            if sample.name == "komas_api_requests_total":
                found[(sample.labels["route"], sample.labels["method"], sample.labels["status"])] = sample.value
    return found


async def test_requests_are_counted_by_route_template_and_status(client: httpx.AsyncClient) -> None:
    before = requests_of((await client.get("/metrics")).text)
    for bot_id in (101, 102, 103):
        assert (await client.get(f"/api/db/bots/{bot_id}")).status_code == 404
    assert (await client.get("/api/db/bots")).status_code == 200
    assert (await client.post("/api/ops/backup")).status_code == 401
    after = requests_of((await client.get("/metrics")).text)
    delta = {key: value - before.get(key, 0.0) for key, value in after.items() if value != before.get(key, 0.0)}
    assert delta[("/api/db/bots/{bot_id}", "GET", "404")] == 3
    assert delta[("/api/db/bots", "GET", "200")] == 1
    assert delta[("/api/ops/{name}", "POST", "401")] == 1
    assert not any("101" in route for route, _, _ in after)  # ids never become labels


async def test_promtool_accepts_the_apis_exposition(client: httpx.AsyncClient) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (Debian's prometheus package; .ci/run installs it)")
    await client.get("/api/db/bots", headers=AUTH)
    body = (await client.get("/metrics")).content
    process = await asyncio.create_subprocess_exec(promtool, "check", "metrics", stdin=PIPE, stdout=PIPE, stderr=PIPE)
    out, err = await process.communicate(body)
    assert process.returncode == 0, out + err
