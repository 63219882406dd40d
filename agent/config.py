"""Settings: TOML file, then ``KIOSK_AGENT_*`` environment, then flags.

Later sources win. Unknown keys and bad values stop start-up with a message
that names the key, because a kiosk quietly running on defaults is worse than
one that says what to fix.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Callable, Mapping
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
    webkit_memory_limit_mb: int = Field(default=300, ge=50, le=4096)
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
    return _load(config_file, environ, flags, lenient=False)[0]


def load_settings_leniently(
    config_file: Path | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    **flags: Any,
) -> tuple[Settings, list[str]]:
    """Like :func:`load_settings`, but a bad source or key falls back to defaults.

    For the kiosk's main job: a typo in agent.toml must not turn a classroom
    screen black or into a restart loop. Returns the settings and one sentence
    per thing that was ignored, for the caller to log.
    """
    return _load(config_file, environ, flags, lenient=True)


def _load(
    config_file: Path | None,
    environ: Mapping[str, str] | None,
    flags: Mapping[str, Any],
    *,
    lenient: bool,
) -> tuple[Settings, list[str]]:
    env = os.environ if environ is None else environ
    problems: list[str] = []

    def guard(read: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        try:
            return read()
        except ConfigError as exc:
            if not lenient:
                raise
            problems.append(f"{exc}; ignored")
            return {}

    explicit = config_file is not None or f"{ENV_PREFIX}CONFIG" in env
    path = config_file or Path(env.get(f"{ENV_PREFIX}CONFIG", str(DEFAULT_CONFIG)))
    layers = [
        (f"config file {path}", guard(lambda: _read_toml(path, required=explicit))),
        ("environment", _read_env(env, problems if lenient else None)),
        ("command line", {k: v for k, v in flags.items() if v is not None}),
    ]
    merged: dict[str, Any] = {}
    origin: dict[str, str] = {}
    for source, values in layers:
        unknown = sorted(set(values) - set(Settings.model_fields))
        if unknown and not lenient:
            raise ConfigError(
                f"{source}: unknown key(s) {', '.join(unknown)}; "
                f"known keys are {', '.join(Settings.model_fields)}"
            )
        problems += [f"{source}: unknown key {key}; ignored" for key in unknown]
        for key, value in values.items():
            if key not in unknown:
                merged[key] = value
                origin[key] = source
    # Each round drops the keys the last one rejected; a few rounds suffice.
    for _ in range(len(Settings.model_fields)):
        try:
            return Settings(**merged), problems
        except ValidationError as exc:
            if not lenient:
                raise ConfigError(_explain(exc, origin)) from None
            bad = _bad_keys(exc, merged)
            if not bad:
                raise ConfigError(_explain(exc, origin)) from None
            problems.append(f"{_explain(exc, origin)}; default used")
            for key in bad:
                merged.pop(key, None)
    raise ConfigError("settings could not be made valid")


def _bad_keys(exc: ValidationError, merged: Mapping[str, Any]) -> set[str]:
    """Keys named by the errors, or by a cross-field rule's message."""
    bad = set()
    for error in exc.errors():
        if error["loc"]:
            bad.add(str(error["loc"][0]))
        else:
            bad.update(key for key in merged if key in error["msg"])
    return bad


def _read_env(env: Mapping[str, str], problems: list[str] | None) -> dict[str, str]:
    """``KIOSK_AGENT_*`` values; unknown names raise, or are noted if lenient."""
    values = {}
    for name, value in env.items():
        if not name.startswith(ENV_PREFIX) or name == f"{ENV_PREFIX}CONFIG":
            continue
        key = name.removeprefix(ENV_PREFIX).lower()
        if key not in Settings.model_fields:
            message = f"environment variable {name}: unknown setting"
            if problems is None:
                raise ConfigError(message)
            problems.append(f"{message}; ignored")
            continue
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
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"config file {path} is not UTF-8 text") from None
    except OSError as exc:
        raise ConfigError(f"config file {path}: {exc.strerror or exc}") from None
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
