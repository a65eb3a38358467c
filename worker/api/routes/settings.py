"""Settings: `GET/POST /api/db/settings`, `GET/DELETE /api/db/settings/{key}`."""

from __future__ import annotations

from fastapi import APIRouter, Response

from events.commands import DeleteSetting, SetSetting
from worker.api import queries
from worker.api.auth import ReadAuth, WriteAuth
from worker.api.deps import CommandsDep, ReadSession, ResourcesDep, fresh_snapshot
from worker.api.errors import get_or_404
from worker.api.idempotency import IdempotentRoute
from worker.api.params import SOURCE, SettingKeyPath
from worker.api.routes._responses import FOUND, READ, WRITE, WRITE_FOUND
from worker.api.schemas import SettingIn, SettingOut
from worker.store.models import Setting

router = APIRouter(prefix="/api/db/settings", tags=["settings"], route_class=IdempotentRoute)


@router.get("", response_model=list[SettingOut], dependencies=[ReadAuth], responses=READ)
async def list_settings(session: ReadSession) -> list[SettingOut]:
    return [SettingOut.model_validate(row) for row in await queries.settings(session)]


@router.get("/{key}", response_model=SettingOut, dependencies=[ReadAuth], responses=FOUND)
async def get_setting(key: SettingKeyPath, session: ReadSession) -> SettingOut:
    setting = await get_or_404(session, Setting, key, f"setting {key!r}")
    return SettingOut.model_validate(setting)


@router.post(
    "",
    response_model=SettingOut,
    status_code=201,
    dependencies=[WriteAuth],
    responses={**WRITE, 200: {"model": SettingOut, "description": "Replaced an existing setting."}},
)
async def set_setting(
    body: SettingIn, commands: CommandsDep, resources: ResourcesDep, response: Response
) -> SettingOut:
    """Create (201) or replace (200) a setting; a missing description keeps the old one."""
    async with fresh_snapshot(resources) as session:
        existed = await session.get(Setting, body.key) is not None
    await commands.execute(SetSetting(key=body.key, value=body.value, description=body.description, source=SOURCE))
    async with fresh_snapshot(resources) as session:
        setting = await get_or_404(session, Setting, body.key, f"setting {body.key!r}")  # deleted in between?
        if existed:
            response.status_code = 200
        return SettingOut.model_validate(setting)


@router.delete("/{key}", status_code=204, dependencies=[WriteAuth], responses=WRITE_FOUND)
async def delete_setting(key: SettingKeyPath, commands: CommandsDep) -> Response:
    await commands.execute(DeleteSetting(key=key, source=SOURCE))
    return Response(status_code=204)
