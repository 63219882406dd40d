"""Settings: TOML file, then ``KIOSK_AGENT_*`` environment, then flags.

Later sources win. Unknown keys and bad values stop start-up with a message
that names the key, because a kiosk quietly running on defaults is worse than
one that says what to fix.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from agent.errors import ConfigError

DEFAULT_CONFIG = Path("/etc/kiosk-agent/agent.toml")
DEFAULT_STATE_DIR = Path("/var/lib/kiosk-agent")
ENV_PREFIX = "KIOSK_AGENT_"
_TOKEN_RE = re.compile(r"[0-9a-f]{64}|[0-9a-f]{32}")


class Settings(BaseSettings):
    """Everything the agent can be told; units are in the names."""

    model_config = SettingsConfigDict(
        extra="forbid",
        validate_default=True,
        frozen=True,
    )

    server_url: str | None = None
    token: SecretStr | None = None
    token_file: Path | None = None
    state_dir: Path = DEFAULT_STATE_DIR
    renderer: Literal["webview", "headless"] = "webview"
    poll_min_s: float = Field(default=8.0, gt=0, le=3600)
    poll_max_s: float = Field(default=45.0, gt=0, le=3600)
    idle_poll_min_s: float = Field(default=60.0, gt=0, le=86400)
    idle_poll_max_s: float = Field(default=300.0, gt=0, le=86400)
    push_enabled: bool = True
    push_ping_interval_s: float = Field(default=30.0, gt=0, le=600)
    push_dead_after_s: float = Field(default=75.0, gt=0, le=3600)
    push_backoff_max_s: float = Field(default=60.0, gt=0, le=3600)
    request_timeout_s: float = Field(default=10.0, gt=0, le=120)
    log_format: Literal["auto", "console", "json", "journal"] = "auto"
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    webkit_disable_compositing: bool = True
    digits: Literal["western", "arabic"] = "western"

    @field_validator("server_url")
    @classmethod
    def _check_server_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http:// or https:// URL with a host")
        return f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"

    @field_validator("token")
    @classmethod
    def _check_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or value.get_secret_value() == "":
            return None
        normal = normalize_token(value.get_secret_value())
        if normal is None:
            raise ValueError("must be 64 (or 32) hexadecimal characters")
        return SecretStr(normal)

    @field_validator("log_level", mode="before")
    @classmethod
    def _lower_level(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _check_bounds(self) -> Settings:
        if self.poll_min_s > self.poll_max_s:
            raise ValueError("poll_min_s must not exceed poll_max_s")
        if self.idle_poll_min_s > self.idle_poll_max_s:
            raise ValueError("idle_poll_min_s must not exceed idle_poll_max_s")
        if self.push_ping_interval_s >= self.push_dead_after_s:
            raise ValueError("push_ping_interval_s must be below push_dead_after_s")
        return self

    @property
    def token_path(self) -> Path:
        """Where ``pair`` stores the token and ``run`` looks for it."""
        return self.token_file or self.state_dir / "token"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # load_settings layers file, environment and flags itself so that an
        # error can say which of them set the bad value.
        return (init_settings,)


def normalize_token(value: str) -> str | None:
    """Lower-case a token and check its shape; None if it is not one."""
    text = value.strip().lower()
    return text if _TOKEN_RE.fullmatch(text) else None


def load_settings(
    config_file: Path | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    **flags: Any,
) -> Settings:
    """Build settings from the file, the environment and flags (highest).

    A missing default file is fine; a missing file named explicitly, a file that
    is not valid TOML, an unknown key or a bad value raises :class:`ConfigError`
    naming the key and where it came from.
    """
    env = os.environ if environ is None else environ
    explicit = config_file is not None or f"{ENV_PREFIX}CONFIG" in env
    path = config_file or Path(env.get(f"{ENV_PREFIX}CONFIG", str(DEFAULT_CONFIG)))
    layers = [
        (f"config file {path}", _read_toml(path, required=explicit)),
        ("environment", _read_env(env)),
        ("command line", {k: v for k, v in flags.items() if v is not None}),
    ]
    merged: dict[str, Any] = {}
    origin: dict[str, str] = {}
    for source, values in layers:
        for key, value in values.items():
            merged[key] = value
            origin[key] = source
    try:
        return Settings(**merged)
    except ValidationError as exc:
        raise ConfigError(_explain(exc, origin)) from None


def _read_env(env: Mapping[str, str]) -> dict[str, str]:
    values = {}
    for name, value in env.items():
        if not name.startswith(ENV_PREFIX) or name == f"{ENV_PREFIX}CONFIG":
            continue
        key = name.removeprefix(ENV_PREFIX).lower()
        if key not in Settings.model_fields:
            raise ConfigError(f"environment variable {name}: unknown setting")
        values[key] = value
    return values


def _read_toml(path: Path, *, required: bool) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        if required:
            raise ConfigError(f"config file {path} does not exist") from None
        return {}
    except PermissionError:
        raise ConfigError(f"config file {path} is not readable") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    unknown = sorted(set(data) - set(Settings.model_fields))
    if unknown:
        raise ConfigError(
            f"config file {path}: unknown key(s) {', '.join(unknown)}; "
            f"known keys are {', '.join(Settings.model_fields)}"
        )
    return data


def _explain(exc: ValidationError, origin: Mapping[str, str]) -> str:
    """One clause per bad key, naming it and the source that set it."""
    clauses = []
    for error in exc.errors():
        key = ".".join(str(part) for part in error["loc"]) or "settings"
        message = error["msg"].removeprefix("Value error, ")
        source = origin.get(key, "the combination of settings")
        clauses.append(f"setting '{key}' from {source}: {message}")
    return "; ".join(clauses)
