"""Command events: every write the REST API, the CLI and operators can ask of the worker.

Same envelope and single writer as the trading events. A command that the data refuses (a
preset name taken, a bot that does not exist) is answered, not dead-lettered: the job result
carries the refusal so the API can say 404 or 409.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from events.envelope import BaseEvent, JsonObject, Symbol, Timeframe, Timestamp

SettingKey = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_.:-]+$")]
Name = Annotated[str, StringConstraints(min_length=1, max_length=200)]
#: Where cached candles come from (the cache row's `source` column); the envelope's `source` stays "who sent it".
DataSource = Annotated[
    str,
    StringConstraints(min_length=1, max_length=50, pattern=r"^[A-Za-z0-9_.-]+$"),
    Field(description="Where the candles come from, e.g. binance (the cache entry's source).", examples=["binance"]),
]
Id = Annotated[int, Field(gt=0)]
Metric = Annotated[float, Field(allow_inf_nan=False)]


class Command(BaseEvent):
    """Marks command events: refusals by the data are answers, not dead letters."""

    command: ClassVar[bool] = True


class _Changes(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    #: The fields null may clear (the columns that can be empty); null for any other is refused.
    clearable: ClassVar[frozenset[str]] = frozenset()


class PresetChanges(_Changes):
    clearable: ClassVar[frozenset[str]] = frozenset({"description"})

    name: Name | None = None
    description: str | None = None
    indicator_type: Annotated[str, StringConstraints(min_length=1, max_length=50)] | None = None
    settings: JsonObject | None = None
    tags: list[Annotated[str, StringConstraints(max_length=100)]] | None = None
    is_favorite: bool | None = None


class BotChanges(_Changes):
    clearable: ClassVar[frozenset[str]] = frozenset({"preset_id", "telegram_chat_id"})

    name: Name | None = None
    symbol: Symbol | None = None
    timeframe: Timeframe | None = None
    preset_id: Id | None = None
    config: JsonObject | None = None
    position_size: Annotated[float, Field(gt=0)] | None = None
    is_active: bool | None = None
    telegram_enabled: bool | None = None
    telegram_chat_id: Annotated[str, StringConstraints(max_length=100)] | None = None


def _only_given(model: type[_Changes], value: Any) -> dict[str, Any]:
    """Validate a partial update and keep only the fields given (null clears, where a field can be empty).

    Strict, as the rest of the event: "12.5" is not a position size.
    """
    changes = model.model_validate(value, strict=True).model_dump(mode="json", exclude_unset=True)
    for name, given in changes.items():
        if given is None and name not in model.clearable:
            clearable = ", ".join(sorted(model.clearable))
            raise ValueError(f"{name} cannot be null (only {clearable} can be cleared)")
    return changes


def _changes_schema(model: type[_Changes]) -> Callable[[dict[str, Any]], None]:
    """The JSON Schema of a `changes` object, as `_only_given` checks it: the model's fields, each
    optional, no others, null only for the fields that can be cleared (the contract states it all)."""

    def write(schema: dict[str, Any]) -> None:
        fields = model.model_json_schema()
        properties: dict[str, Any] = fields["properties"]
        for name, field in properties.items():
            field.pop("default", None)
            if name not in model.clearable and "anyOf" in field:
                (kept,) = [branch for branch in field.pop("anyOf") if branch != {"type": "null"}]
                field.update(kept)
        schema.pop("additionalProperties", None)
        schema.update(type="object", properties=properties, additionalProperties=False)

    return write


class SetSetting(Command):
    type: Literal["settings.set"] = "settings.set"
    key: SettingKey
    value: Any = Field(description="Any JSON value; it keeps its type.")
    description: str | None = None


class DeleteSetting(Command):
    type: Literal["settings.delete"] = "settings.delete"
    key: SettingKey


class CreatePreset(Command):
    type: Literal["preset.create"] = "preset.create"
    name: Name
    description: str | None = None
    indicator_type: Annotated[str, StringConstraints(min_length=1, max_length=50)] = "trg"
    settings: JsonObject = Field(default_factory=dict)
    tags: list[Annotated[str, StringConstraints(max_length=100)]] = Field(default_factory=list)
    is_favorite: bool = False


class UpdatePreset(Command):
    type: Literal["preset.update"] = "preset.update"
    preset_id: Id
    changes: dict[str, Any] = Field(
        description="Fields to change: name, description, indicator_type, settings, tags, is_favorite.",
        json_schema_extra=_changes_schema(PresetChanges),
    )

    @field_validator("changes", mode="before")
    @classmethod
    def _check(cls, value: Any) -> dict[str, Any]:
        return _only_given(PresetChanges, value)


class UpdatePresetPerformance(Command):
    type: Literal["preset.performance"] = "preset.performance"
    preset_id: Id
    win_rate: Annotated[float, Field(ge=0, le=100)] | None = None
    profit_factor: Annotated[float, Field(ge=0)] | None = None
    total_profit_percent: Metric | None = None
    max_drawdown_percent: Annotated[float, Field(ge=0)] | None = None
    sharpe_ratio: Metric | None = None


class SetPresetFavorite(Command):
    type: Literal["preset.favorite"] = "preset.favorite"
    preset_id: Id
    is_favorite: bool | None = Field(default=None, description="The new state; absent toggles it.")


class DeletePreset(Command):
    type: Literal["preset.delete"] = "preset.delete"
    preset_id: Id


class CreateBot(Command):
    type: Literal["bot.create"] = "bot.create"
    name: Name
    symbol: Symbol
    timeframe: Timeframe
    preset_id: Id | None = None
    config: JsonObject = Field(default_factory=dict)
    position_size: Annotated[float, Field(gt=0)] = 100.0
    is_active: bool = False
    telegram_enabled: bool = False
    telegram_chat_id: Annotated[str, StringConstraints(max_length=100)] | None = None


class UpdateBot(Command):
    type: Literal["bot.update"] = "bot.update"
    bot_id: Id
    changes: dict[str, Any] = Field(
        description="Fields to change, as in bot.create.", json_schema_extra=_changes_schema(BotChanges)
    )

    @field_validator("changes", mode="before")
    @classmethod
    def _check(cls, value: Any) -> dict[str, Any]:
        return _only_given(BotChanges, value)


class DeleteBot(Command):
    type: Literal["bot.delete"] = "bot.delete"
    bot_id: Id


class UpsertCache(Command):
    type: Literal["cache.upsert"] = "cache.upsert"
    symbol: Symbol
    timeframe: Timeframe
    data_source: DataSource = "binance"
    candles_count: Annotated[int, Field(ge=0)] | None = None
    start_time: Timestamp | None = None
    end_time: Timestamp | None = None
    file_path: Annotated[str, StringConstraints(max_length=500)] | None = None
    file_size: Annotated[int, Field(ge=0)] | None = None
    is_complete: bool | None = None

    def changes(self) -> dict[str, Any]:
        """The data fields given (not None)."""
        fields = ("candles_count", "start_time", "end_time", "file_path", "file_size", "is_complete")
        values: dict[str, Any] = {name: getattr(self, name) for name in fields}
        return {name: value for name, value in values.items() if value is not None}


class DeleteCache(Command):
    type: Literal["cache.delete"] = "cache.delete"
    symbol: Symbol
    timeframe: Timeframe
    data_source: DataSource = "binance"


COMMAND_TYPES: tuple[type[BaseEvent], ...] = (
    SetSetting,
    DeleteSetting,
    CreatePreset,
    UpdatePreset,
    UpdatePresetPerformance,
    SetPresetFavorite,
    DeletePreset,
    CreateBot,
    UpdateBot,
    DeleteBot,
    UpsertCache,
    DeleteCache,
)

__all__ = [
    "COMMAND_TYPES",
    "BotChanges",
    "Command",
    "CreateBot",
    "CreatePreset",
    "DeleteBot",
    "DeleteCache",
    "DeletePreset",
    "DeleteSetting",
    "PresetChanges",
    "SetPresetFavorite",
    "SetSetting",
    "UpdateBot",
    "UpdatePreset",
    "UpdatePresetPerformance",
    "UpsertCache",
]
