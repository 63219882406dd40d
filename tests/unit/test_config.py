"""Settings come from file, environment and flags, and bad input names its key."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.config import load_settings, load_settings_leniently, normalize_token
from agent.errors import ConfigError

TOKEN = "ab" * 32


def _toml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "agent.toml"
    path.write_text(text)
    return path


def test_defaults_without_any_file(tmp_path: Path) -> None:
    """A missing default config file is fine and gives the documented defaults."""
    settings = load_settings(environ={})

    assert settings.poll_min_s == 8.0 and settings.poll_max_s == 45.0
    assert settings.renderer == "webview" and settings.push_enabled is True


def test_environment_overrides_file_and_flags_override_environment(
    tmp_path: Path,
) -> None:
    """Later sources win: file < KIOSK_AGENT_* < flags."""
    path = _toml(
        tmp_path, 'poll_min_s = 5\nrenderer = "headless"\nlog_level = "debug"\n'
    )

    settings = load_settings(
        path,
        environ={"KIOSK_AGENT_POLL_MIN_S": "6", "KIOSK_AGENT_LOG_LEVEL": "warning"},
        log_level="error",
    )

    assert settings.renderer == "headless"
    assert settings.poll_min_s == 6.0
    assert settings.log_level == "error"


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("poll_min_s = -1\n", "poll_min_s"),
        ('renderer = "vga"\n', "renderer"),
        ('server_url = "ftp://x"\n', "server_url"),
        ("colour = 3\n", "colour"),
    ],
)
def test_bad_file_values_name_the_key(tmp_path: Path, text: str, key: str) -> None:
    """Each bad value or unknown key stops start-up with the key in the message."""
    with pytest.raises(ConfigError, match=key):
        load_settings(_toml(tmp_path, text), environ={})


def test_bad_environment_value_names_key_and_source() -> None:
    """An environment typo says which variable to fix."""
    with pytest.raises(ConfigError, match=r"poll_max_s.*environment"):
        load_settings(environ={"KIOSK_AGENT_POLL_MAX_S": "soon"})


def test_unknown_environment_variable_is_rejected() -> None:
    """A misspelt KIOSK_AGENT_ variable is an error, not silently ignored."""
    with pytest.raises(ConfigError, match="KIOSK_AGENT_POL_MIN_S"):
        load_settings(environ={"KIOSK_AGENT_POL_MIN_S": "3"})


def test_invalid_toml_is_reported_with_the_path(tmp_path: Path) -> None:
    """A syntax error names the file."""
    path = _toml(tmp_path, "poll_min_s = = 3\n")
    with pytest.raises(ConfigError, match=str(path)):
        load_settings(path, environ={})


def test_explicit_missing_file_is_an_error(tmp_path: Path) -> None:
    """--config naming a file that is not there fails instead of using defaults."""
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nope.toml", environ={})


def test_min_above_max_is_rejected() -> None:
    """Interval bounds must be ordered."""
    with pytest.raises(ConfigError, match="poll_min_s must not exceed poll_max_s"):
        load_settings(environ={}, poll_min_s=50)


def test_token_is_normalised_and_hidden_in_repr() -> None:
    """Tokens are case-insensitive; the secret never shows in a repr."""
    settings = load_settings(environ={}, token=TOKEN.upper())

    assert settings.token is not None
    assert settings.token.get_secret_value() == TOKEN
    assert TOKEN not in repr(settings)


@pytest.mark.parametrize("value", ["", "xyz", "ab" * 31, "g" * 64])
def test_malformed_tokens_are_refused(value: str) -> None:
    """Only 64 or 32 hex characters are tokens."""
    assert normalize_token(value) is None


def test_server_url_trailing_slash_is_dropped() -> None:
    """URLs are normalised so paths join cleanly."""
    settings = load_settings(environ={}, server_url="https://school.example/")
    assert settings.server_url == "https://school.example"


def test_lenient_loading_drops_only_what_is_bad(tmp_path: Path) -> None:
    """For the main job, a bad key falls back to its default and is reported."""
    path = _toml(tmp_path, 'poll_min_s = "soon"\ncolour = 3\nrenderer = "headless"\n')

    settings, problems = load_settings_leniently(
        path, environ={"KIOSK_AGENT_NOPE": "1", "KIOSK_AGENT_POLL_MAX_S": "30"}
    )

    assert settings.renderer == "headless" and settings.poll_max_s == 30.0
    assert settings.poll_min_s == 8.0
    assert any("poll_min_s" in p for p in problems)
    assert any("colour" in p for p in problems)
    assert any("KIOSK_AGENT_NOPE" in p for p in problems)


@pytest.mark.parametrize("content", [b"\xff\xfe\x00", b"poll_min_s = = 1"])
def test_lenient_loading_ignores_an_unreadable_file(
    tmp_path: Path, content: bytes
) -> None:
    """A file that is not UTF-8 or not TOML is ignored as a whole, with a reason."""
    path = tmp_path / "agent.toml"
    path.write_bytes(content)

    settings, problems = load_settings_leniently(path, environ={})

    assert settings.poll_min_s == 8.0
    assert len(problems) == 1 and str(path) in problems[0]


def test_directory_as_config_is_a_clear_error(tmp_path: Path) -> None:
    """--config naming a directory says so instead of a traceback."""
    with pytest.raises(ConfigError, match=str(tmp_path)):
        load_settings(tmp_path, environ={})


def test_lenient_cross_field_error_drops_both_keys() -> None:
    """poll_min_s above poll_max_s falls back to both defaults."""
    settings, problems = load_settings_leniently(
        environ={}, poll_min_s=50, poll_max_s=40
    )

    assert (settings.poll_min_s, settings.poll_max_s) == (8.0, 45.0)
    assert problems
