"""Service settings, read once from the environment when the service starts (the edge)."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from scoring.bands import RiskBands
from scoring.offers.value import ValueConfig


class ServeSettingsError(ValueError):
    pass


def workers_from_env(env: dict[str, str] | None = None) -> int:
    """``CHURN_WORKERS`` (default 1). Read on its own because BentoML needs it when it imports
    the service, before the settings (and their API keys) exist."""
    raw = (os.environ if env is None else env).get("CHURN_WORKERS", "1")
    try:
        workers = int(raw)
    except ValueError:
        workers = 0
    if not 1 <= workers <= 64:
        raise ServeSettingsError(f"CHURN_WORKERS (--workers) must be a whole number from 1 to 64, got {raw!r}")
    return workers


class ServeSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    model_uri: str = "models:/churn@champion"
    store: Path = Path("online_store.sqlite")
    catalogue: Path | None = None
    api_keys: tuple[SecretStr, ...] = ()
    allow_anonymous: bool = False
    max_items: int = Field(1000, ge=1)
    max_body_bytes: int = Field(2_000_000, ge=1024)
    poll_seconds: float = Field(30.0, gt=0, description="how often the registry alias is checked")
    workers: int = Field(1, ge=1, le=64, description="BentoML worker processes")
    bands: RiskBands = RiskBands()
    value: ValueConfig = ValueConfig()

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> ServeSettings:
        env = dict(os.environ if env is None else env)
        keys = [k.strip() for k in env.get("CHURN_API_KEY", "").split(",") if k.strip()]
        key_file = env.get("CHURN_API_KEY_FILE")
        if key_file:
            path = Path(key_file)
            if not path.exists():
                raise ServeSettingsError(f"CHURN_API_KEY_FILE {path} does not exist")
            keys += [line.strip() for line in path.read_text().splitlines() if line.strip()]
        allow = env.get("CHURN_ALLOW_ANONYMOUS", "").lower() in ("1", "true", "yes")
        if not keys and not allow:
            raise ServeSettingsError("no API key: set CHURN_API_KEY or CHURN_API_KEY_FILE "
                                     "(or CHURN_ALLOW_ANONYMOUS=1 for a closed test network)")
        try:
            return cls(
                model_uri=env.get("CHURN_MODEL_URI", cls.model_fields["model_uri"].default),
                store=Path(env.get("CHURN_STORE", "online_store.sqlite")),
                catalogue=Path(env["CHURN_CATALOGUE"]) if env.get("CHURN_CATALOGUE") else None,
                api_keys=tuple(SecretStr(k) for k in keys), allow_anonymous=allow,
                max_items=int(env.get("CHURN_MAX_ITEMS", 1000)),
                max_body_bytes=int(env.get("CHURN_MAX_BODY_BYTES", 2_000_000)),
                poll_seconds=float(env.get("CHURN_POLL_SECONDS", 30)),
                workers=workers_from_env(env),
                bands=RiskBands.parse(env["CHURN_RISK_BANDS"]) if env.get("CHURN_RISK_BANDS")
                else RiskBands())
        except ValueError as exc:
            raise ServeSettingsError(f"invalid service setting: {exc}") from exc
