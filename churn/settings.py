"""The one settings object, read once at the edge (CLI) from an optional YAML file."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from features.config import FeatureConfig, LabelConfig
from features.errors import BadInput
from features.parallel import ParallelConfig
from jobs.monitoring import MonitorConfig
from scoring.bands import RiskBands
from training.config import TrainConfig


class SettingsError(BadInput):
    pass


class DataConfig(BaseModel):
    """What is declared about the CRM data itself."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    as_of: datetime | None = Field(None, description=(
        "when the data was extracted (a date means its midnight, UTC unless a zone is given): "
        "no timestamp may be later, and labels are known for horizons ending by it; empty = the "
        "data's latest timestamp (never later than now)"))


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    data: DataConfig = DataConfig()
    features: FeatureConfig = FeatureConfig()
    labels: LabelConfig = LabelConfig()
    training: TrainConfig = TrainConfig()
    monitor: MonitorConfig = MonitorConfig()
    parallel: ParallelConfig = ParallelConfig()  # the local feature build's worker processes
    bands: RiskBands = RiskBands()


def resolve_as_of(settings: Settings, override: str | None = None):
    """The data's declared as-of time: the command line's, else the settings', else ``None``
    (then the data's latest timestamp is its end). Raises ContractError when it is not a date."""
    from features.contract import parse_as_of

    return parse_as_of(override if override else settings.data.as_of)


def load_settings(path: str | Path | None) -> Settings:
    """Defaults, overridden by the YAML file at ``path`` when given."""
    if path is None:
        return Settings()
    path = Path(path)
    if not path.exists():
        raise SettingsError(f"config file {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise SettingsError(f"config file {path} is not valid YAML: {exc}") from exc
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise SettingsError(f"config file {path}: {problems}") from exc
