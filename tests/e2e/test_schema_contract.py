"""The schema is the contract, on the real thing: what `komas events schema` accepts, the worker and
`POST /api/events` accept; what it refuses, both refuse, for the same instances.

Instances come from the schema itself (hypothesis-jsonschema), each sent as it is or spoiled by one
of the mutations of `tests/events/test_schema.py`; the schema's own verdict (`jsonschema`) is the
expectation. Each instance goes once through the API (202 or 422) and once as a job written byte by
byte into Redis and run by the real burst worker (applied, duplicate or parked, or a dead letter
saying "invalid event"); the jobs the API queued run too, and must all be accepted.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from events.wire import JOB_KEY_PREFIX
from tests.api.conftest import AUTH, TOKEN, serve
from tests.e2e.conftest import E2E
from tests.events.test_schema import MUTATIONS, SCHEMA, VALIDATOR, schema_instances
from worker.api import create_app

#: How the worker says an event broke the contract (other dead letters are business outcomes).
REFUSAL = re.compile(r"invalid event|required on the wire")
EVENT_ID = re.compile(SCHEMA["$defs"]["BotToggled"]["properties"]["event_id"]["pattern"])


cases = st.lists(st.tuples(schema_instances, st.sampled_from([None, None, *MUTATIONS])), min_size=1, max_size=6)


def with_new_id(payload: Any) -> Any:
    """The same instance under a fresh event id when it has a valid one (so the two paths never dedupe each other)."""
    if isinstance(payload, dict) and isinstance(payload.get("event_id"), str) and EVENT_ID.match(payload["event_id"]):
        return {**payload, "event_id": str(uuid.uuid4())}
    return payload


@dataclass
class Case:
    payload: Any
    valid: bool
    job_id: str = ""


def refused_by_worker(result: dict[str, Any]) -> bool:
    """A one-event job's verdict: refused when its event became a dead letter for breaking the contract."""
    letters = result.get("dead_letters") or []
    return any(REFUSAL.search(letter["reason"]) for letter in letters)


async def send_job(e2e: E2E, payload: Any) -> str:
    job_id = uuid.uuid4().hex
    body = json.dumps({"t": None, "f": "apply_events", "a": [[payload]], "k": {}, "et": int(time.time() * 1000)})
    async with e2e.pool.pipeline(transaction=True) as pipe:
        pipe.set(JOB_KEY_PREFIX + job_id, body.encode(), px=3_600_000)
        pipe.zadd(e2e.queue, {job_id: time.time() * 1000})
        await pipe.execute()
    return e2e.track([job_id])[0]


async def send_request(api: httpx.AsyncClient, payload: Any) -> httpx.Response:
    return await api.post(
        "/api/events", content=json.dumps(payload), headers={**AUTH, "Content-Type": "application/json"}
    )


#: No shrinking: each example runs the API and a worker; the failing case is in the assertion's message.
@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
)
@given(drawn=cases)
async def test_the_worker_and_the_api_accept_exactly_what_the_schema_accepts(e2e: E2E, drawn: Any) -> None:
    config = e2e.config.model_copy(update={"api_token": SecretStr(TOKEN)})
    sent = [
        Case(payload, VALIDATOR.is_valid(payload))
        for payload in (instance if mutation is None else MUTATIONS[mutation](instance) for instance, mutation in drawn)
    ]
    api_jobs: list[str] = []
    async with serve(create_app(config)) as api:
        for case in sent:
            response = await send_request(api, with_new_id(case.payload))
            assert response.status_code == (202 if case.valid else 422), (case, response.text)
            if case.valid:
                api_jobs += e2e.track(response.json()["job_ids"])
    for case in sent:
        case.job_id = await send_job(e2e, with_new_id(case.payload))
    await e2e.run_worker()

    for case in sent:
        result = await e2e.result(case.job_id)
        assert refused_by_worker(result) == (not case.valid), (case, result)
    for job_id in api_jobs:
        result = await e2e.result(job_id)
        assert not refused_by_worker(result), result
