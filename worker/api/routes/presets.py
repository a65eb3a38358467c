"""Presets: list, get, create, update, performance, favorite, delete."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Query, Response

from events.commands import CreatePreset, DeletePreset, SetPresetFavorite, UpdatePreset, UpdatePresetPerformance
from worker.api import queries
from worker.api.auth import ReadAuth, WriteAuth
from worker.api.deps import CommandsDep, ReadSession, ResourcesDep, fresh_snapshot
from worker.api.errors import ApiError, get_or_404
from worker.api.idempotency import IdempotentRoute
from worker.api.params import SOURCE, Limit, ResourceId
from worker.api.resources import Resources
from worker.api.routes._responses import FOUND, READ, WRITE_FOUND, WRITE_UNIQUE
from worker.api.schemas import FavoriteIn, PerformanceIn, PresetIn, PresetOut, PresetUpdate
from worker.store.models import Preset

router = APIRouter(prefix="/api/db/presets", tags=["presets"], route_class=IdempotentRoute)


async def _read_back(resources: Resources, preset_id: int) -> PresetOut:
    """The preset as the worker left it (a fresh snapshot, after its commit)."""
    async with fresh_snapshot(resources) as session:
        preset = await get_or_404(session, Preset, preset_id, f"preset {preset_id}")
        return PresetOut.model_validate(preset)


@router.get("", response_model=list[PresetOut], dependencies=[ReadAuth], responses=READ)
async def list_presets(
    session: ReadSession,
    favorites_only: bool = False,
    indicator_type: Annotated[str | None, Query(max_length=50)] = None,
    limit: Limit = 100,
) -> list[PresetOut]:
    """Most recently updated first."""
    rows = await queries.presets(session, favorites_only, indicator_type, limit)
    return [PresetOut.model_validate(row) for row in rows]


@router.get("/{preset_id}", response_model=PresetOut, dependencies=[ReadAuth], responses=FOUND)
async def get_preset(preset_id: ResourceId, session: ReadSession) -> PresetOut:
    preset = await get_or_404(session, Preset, preset_id, f"preset {preset_id}")
    return PresetOut.model_validate(preset)


@router.post("", response_model=PresetOut, status_code=201, dependencies=[WriteAuth], responses=WRITE_UNIQUE)
async def create_preset(body: PresetIn, commands: CommandsDep, resources: ResourcesDep) -> PresetOut:
    """201 with the stored preset; 409 when the name is taken."""
    answer = await commands.execute(CreatePreset(**body.model_dump(), source=SOURCE))
    if "preset_id" not in answer:  # a retry of a create applied long ago, whose answer has expired
        raise ApiError(
            409,
            "this Idempotency-Key created its preset in an earlier request whose answer is no longer kept "
            "(KOMAS_API_IDEMPOTENCY_TTL_S, and the worker's result for an hour); nothing was created again",
        )
    return await _read_back(resources, int(answer["preset_id"]))


@router.put("/{preset_id}", response_model=PresetOut, dependencies=[WriteAuth], responses=WRITE_UNIQUE)
async def update_preset(
    preset_id: ResourceId, body: PresetUpdate, commands: CommandsDep, resources: ResourcesDep
) -> PresetOut:
    """Change the fields given; the others keep their values."""
    changes = body.model_dump(exclude_unset=True)
    await commands.execute(UpdatePreset(preset_id=preset_id, changes=changes, source=SOURCE))
    return await _read_back(resources, preset_id)


@router.put("/{preset_id}/performance", response_model=PresetOut, dependencies=[WriteAuth], responses=WRITE_FOUND)
async def update_performance(
    preset_id: ResourceId, body: PerformanceIn, commands: CommandsDep, resources: ResourcesDep
) -> PresetOut:
    """Set the metrics given; the others keep their values (the seed's version nulled them)."""
    await commands.execute(UpdatePresetPerformance(preset_id=preset_id, **body.model_dump(), source=SOURCE))
    return await _read_back(resources, preset_id)


@router.post("/{preset_id}/favorite", response_model=PresetOut, dependencies=[WriteAuth], responses=WRITE_FOUND)
async def favorite(
    preset_id: ResourceId,
    commands: CommandsDep,
    resources: ResourcesDep,
    body: Annotated[FavoriteIn | None, Body()] = None,
) -> PresetOut:
    """Toggle the favorite flag, or set it with `{"is_favorite": true|false}`."""
    state = body.is_favorite if body is not None else None
    await commands.execute(SetPresetFavorite(preset_id=preset_id, is_favorite=state, source=SOURCE))
    return await _read_back(resources, preset_id)


@router.delete("/{preset_id}", status_code=204, dependencies=[WriteAuth], responses=WRITE_FOUND)
async def delete_preset(preset_id: ResourceId, commands: CommandsDep) -> Response:
    """Its bots keep running without a preset; its backtest history goes with it."""
    await commands.execute(DeletePreset(preset_id=preset_id, source=SOURCE))
    return Response(status_code=204)
