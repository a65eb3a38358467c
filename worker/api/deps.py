"""`Annotated` dependencies the routes declare: the resources, a read-only session, the command bus."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from events.commands import Command
from worker.api.commands import execute
from worker.api.idempotency import WriteRecord, WriteRequestDep
from worker.api.resources import Resources
from worker.config import Config


def get_resources(request: Request) -> Resources:
    resources: Resources = request.app.state.resources
    return resources


ResourcesDep = Annotated[Resources, Depends(get_resources)]


def get_config(resources: ResourcesDep) -> Config:
    return resources.config


ConfigDep = Annotated[Config, Depends(get_config)]


async def read_session(resources: ResourcesDep) -> AsyncIterator[AsyncSession]:
    """One read-only transaction per request: every query of a request sees one snapshot."""
    async with fresh_snapshot(resources) as session:
        yield session


ReadSession = Annotated[AsyncSession, Depends(read_session)]


class Commands:
    """Sends the one command of a write route to the worker; see `worker.api.commands`."""

    def __init__(self, resources: Resources, record: WriteRecord) -> None:
        self._resources = resources
        self._record = record

    async def execute(self, command: Command) -> dict[str, Any]:
        """Its event id is the request's (`Idempotency-Key`), whatever `command` was built with."""
        return await execute(self._resources, command, self._record.write, self._record)


def get_commands(resources: ResourcesDep, write: WriteRequestDep, request: Request) -> Commands:
    return Commands(resources, WriteRecord(resources, write, request))


CommandsDep = Annotated[Commands, Depends(get_commands)]


@asynccontextmanager
async def fresh_snapshot(resources: Resources) -> AsyncIterator[AsyncSession]:
    """A new read-only transaction: what a write route reads back after the worker committed."""
    async with resources.sessions() as session, session.begin():
        yield session
