"""The one settings object, read once at the edge (CLI) from an optional YAML file."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from features.config import FeatureConfig, LabelConfig
from features.errors import BadInput
from jobs.monitoring import MonitorConfig
from scoring.bands import RiskBands
from training.config import TrainConfig


class SettingsError(BadInput):
    pass


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    features: FeatureConfig = FeatureConfig()
    labels: LabelConfig = LabelConfig()
    training: TrainConfig = TrainConfig()
    monitor: MonitorConfig = MonitorConfig()
    bands: RiskBands = RiskBands()


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
