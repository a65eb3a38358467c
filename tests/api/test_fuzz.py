"""Fuzz the OpenAPI schema with schemathesis: no request, valid or not, may get a server error, and
every answer is one the schema documents (status, content type, headers and body).

The app runs in-process (schemathesis' ASGI transport, on an event loop of its own) with a real
worker answering the writes from a thread, so generated writes reach the 201/404/409 paths too.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import schemathesis
from fastapi import FastAPI
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.config import SchemathesisConfig
from schemathesis.python.asgi import shutdown_lifespans

from tests.api.conftest import AUTH, TOKEN, migrate, stop_gracefully
from worker.api import create_app
from worker.config import Config
from worker.runtime.runner import build_worker

#: Examples per operation: ~16 operations, each write waits for the worker; about 10-15 s in all.
MAX_EXAMPLES = 15
FUZZ_CONFIG = {
    "generation": {"max-examples": MAX_EXAMPLES, "database": "none"},
    "phases": {"coverage": {"enabled": False}, "stateful": {"enabled": False}},
}


class WorkerThread:
    """A real arq worker on an event loop in its own thread, stopped when the test module ends."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.stopped = threading.Event()
        self.started = threading.Event()
        self.thread = threading.Thread(target=lambda: asyncio.run(self._run()), name="komas-worker", daemon=True)

    async def _run(self) -> None:
        arq_worker = build_worker(self.config, poll_delay=0.01, handle_signals=False, keep_result=60)
        task = asyncio.create_task(arq_worker.main())
        self.started.set()
        await asyncio.to_thread(self.stopped.wait)
        await stop_gracefully(arq_worker, task)

    def __enter__(self) -> WorkerThread:
        self.thread.start()
        assert self.started.wait(10), "the worker thread did not start"
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopped.set()
        self.thread.join(30)
        assert not self.thread.is_alive(), "the worker thread did not stop"


@pytest.fixture(scope="module")
def fuzz_app(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FastAPI]:
    """One app, database, queue and worker for every operation of the schema."""
    path: Path = tmp_path_factory.mktemp("fuzz") / "komas.db"
    queue = f"komas:test:{uuid.uuid4().hex}"
    config = Config(
        database_url=f"sqlite+aiosqlite:///{path}", redis_url=redis_url, queue=queue, api_token=TOKEN, api_wait_s=5
    )
    asyncio.run(migrate(config.database_url))
    app = create_app(config)
    try:
        with WorkerThread(config):
            yield app
            shutdown_lifespans()  # the app's lifespan: close its Redis pool and engine while Redis is there
    finally:
        client = redis.Redis.from_url(redis_url)
        try:
            job_ids = [job_id.decode() for job_id in client.zrange(queue, 0, -1)]  # type: ignore[union-attr]
            records = list(client.scan_iter(match=f"{queue}:api:*"))  # idempotency records of the writes
            client.delete(queue, f"{queue}:health-check", *(f"arq:job:{job_id}" for job_id in job_ids), *records)
        finally:
            client.close()


# The schema does not depend on the configuration: read it from an app that is never started.
schema = schemathesis.openapi.from_dict(
    create_app(Config()).openapi(), config=SchemathesisConfig.from_dict(FUZZ_CONFIG)
)


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@schema.parametrize()
def test_every_answer_is_documented_and_none_is_a_server_error(case: schemathesis.Case[Any], fuzz_app: FastAPI) -> None:
    case.call_and_validate(app=fuzz_app, base_url="http://127.0.0.1:8000", headers=AUTH, checks=CHECKS)
