"""Service settings, read once from the environment when the service starts (the edge)."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from features.errors import BadInput
from scoring.bands import RiskBands
from scoring.offers.value import ValueConfig

MIN_KEY_CHARS = 32
NEW_KEY_HINT = "python -c 'import secrets; print(secrets.token_urlsafe(32))'"


class ServeSettingsError(BadInput):
    pass


def _flag(env: dict[str, str], name: str, default: bool = False) -> bool:
    """A yes/no variable: 1, true or yes; 0, false or no; unset or empty is ``default``. Anything
    else is refused rather than guessed."""
    value = env.get(name, "").strip().lower()
    if not value:
        return default
    if value in ("1", "true", "yes"):
        return True
    if value in ("0", "false", "no"):
        return False
    raise ServeSettingsError(f"{name} must be 1, true or yes (on) or 0, false or no (off), "
                             f"not {env[name]!r}")


def read_api_keys(env: dict[str, str]) -> list[str]:
    """Keys from ``CHURN_API_KEY`` (comma-separated) and ``CHURN_API_KEY_FILE`` (one a line; blank
    lines and ``#`` comments ignored). A key under ``MIN_KEY_CHARS`` characters is refused; errors
    say where the key is and how long it is, never what it is."""
    found = [("CHURN_API_KEY", k.strip()) for k in env.get("CHURN_API_KEY", "").split(",")
             if k.strip()]
    key_file = env.get("CHURN_API_KEY_FILE")
    if key_file:
        path = Path(key_file)
        if not path.exists():
            raise ServeSettingsError(f"CHURN_API_KEY_FILE {path} does not exist")
        for n, line in enumerate(path.read_text().splitlines(), start=1):
            line = line.strip()
            if line and not line.startswith("#"):
                found.append((f"{path} line {n}", line))
    for where, key in found:
        if len(key) < MIN_KEY_CHARS:
            raise ServeSettingsError(
                f"API key in {where} is {len(key)} characters; keys need at least "
                f"{MIN_KEY_CHARS} (make one with {NEW_KEY_HINT})")
    return [key for _, key in found]


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
    store_check_seconds: float = Field(5.0, gt=0, description="how often the online store file "
                                       "is checked for a new version")
    model_cache: Path = Field(Path(".churn-model-cache"), description="local copies of the last "
                              "model loaded, to start from when the registry is down")
    metrics_open: bool = Field(False, description="serve /metrics without an API key")
    rate_limit: float = Field(100.0, ge=0, description="requests per second per API key and "
                              "worker (token bucket); 0 turns the limit off")
    rate_burst: int = Field(200, ge=1, description="requests a key may send at once")
    workers: int = Field(1, ge=1, le=64, description="BentoML worker processes")
    access_log: bool = Field(True, description="one log line per request (id, method, path, "
                             "status, ms); CHURN_ACCESS_LOG=0 turns it off")
    bands: RiskBands = RiskBands()
    value: ValueConfig = ValueConfig()

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> ServeSettings:
        env = dict(os.environ if env is None else env)
        keys = read_api_keys(env)
        allow = _flag(env, "CHURN_ALLOW_ANONYMOUS")
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
                store_check_seconds=float(env.get("CHURN_STORE_CHECK_SECONDS", 5)),
                model_cache=Path(env.get("CHURN_MODEL_CACHE", ".churn-model-cache")),
                metrics_open=_flag(env, "CHURN_METRICS_OPEN"),
                rate_limit=float(env.get("CHURN_RATE_LIMIT", 100)),
                rate_burst=int(env.get("CHURN_RATE_BURST", 200)),
                workers=workers_from_env(env),
                access_log=_flag(env, "CHURN_ACCESS_LOG", default=True),
                bands=RiskBands.parse(env["CHURN_RISK_BANDS"]) if env.get("CHURN_RISK_BANDS")
                else RiskBands())
        except ValueError as exc:
            raise ServeSettingsError(f"invalid service setting: {exc}") from exc
