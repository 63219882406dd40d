"""pair accepts a token, a ?token= URL or a short-code URL, and stores it 0600."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from agent.config import Settings
from agent.errors import PairingError
from agent.pairing import Pairing, PairingStore, parse_reference

TOKEN = "ef" * 32


@pytest.mark.parametrize(
    ("text", "server", "token", "code"),
    [
        (TOKEN, None, TOKEN, None),
        (TOKEN.upper(), None, TOKEN, None),
        ("ab" * 16, None, "ab" * 16, None),
        (
            f"https://school.example/?token={TOKEN}",
            "https://school.example",
            TOKEN,
            None,
        ),
        (
            f"http://127.0.0.1:8000/display/?x=1&token={TOKEN}",
            "http://127.0.0.1:8000",
            TOKEN,
            None,
        ),
        (
            "https://school.example/?token=AB3XYZ",
            "https://school.example",
            None,
            "AB3XYZ",
        ),
        ("https://school.example/s/AB3XYZ/", "https://school.example", None, "AB3XYZ"),
        ("https://school.example/s/ab3xyz", "https://school.example", None, "AB3XYZ"),
    ],
)
def test_reference_forms(
    text: str, server: str | None, token: str | None, code: str | None
) -> None:
    """Each accepted form yields the server, token or short code it carries."""
    ref = parse_reference(text)
    assert (ref.server_url, ref.token, ref.short_code) == (server, token, code)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "hello",
        "ftp://school.example/?token=x",
        "https://school.example/",
        "https://school.example/?token=zz",
    ],
)
def test_unusable_references_explain_themselves(text: str) -> None:
    """Anything else is refused with a sentence, not a traceback."""
    with pytest.raises(PairingError):
        parse_reference(text)


def test_store_saves_token_0600_and_forget_keeps_device_key(tmp_path: Path) -> None:
    """The token file is private; unpair removes it but not the device key."""
    settings = Settings(state_dir=tmp_path)
    store = PairingStore(settings)
    (tmp_path / "device_key").write_text("k" * 36)

    store.save(Pairing("https://school.example", TOKEN))

    assert stat.S_IMODE((tmp_path / "token").stat().st_mode) == 0o600
    assert store.load() == (Pairing("https://school.example", TOKEN), "")
    assert store.forget() is True
    assert store.load()[0] is None
    assert (tmp_path / "device_key").exists()


def test_malformed_token_file_is_reported(tmp_path: Path) -> None:
    """A damaged token file is named in the problem, not used."""
    (tmp_path / "token").write_text("not-a-token")
    pairing, problem = PairingStore(
        Settings(state_dir=tmp_path, server_url="https://s.example")
    ).load()
    assert pairing is None and "token" in problem


def test_firstboot_file_pairs_once_and_is_removed(tmp_path: Path) -> None:
    """server_url and token from the first-boot file are stored, then the file goes."""
    boot = tmp_path / "boot"
    boot.mkdir()
    (boot / "kiosk-agent.toml").write_text(
        f'server_url = "https://school.example"\ntoken = "{TOKEN}"\n'
    )
    store = PairingStore(Settings(state_dir=tmp_path / "state"))

    message = store.consume_firstboot((boot / "kiosk-agent.toml",))

    assert "paired" in message
    assert not (boot / "kiosk-agent.toml").exists()
    assert store.load()[0] == Pairing("https://school.example", TOKEN)
    assert store.consume_firstboot((boot / "kiosk-agent.toml",)) == ""


def test_firstboot_file_in_state_dir_with_bad_token_is_removed(tmp_path: Path) -> None:
    """A broken first-boot file is reported and deleted, not retried every boot."""
    (tmp_path / "firstboot.toml").write_text(
        'server_url = "https://s.example"\ntoken = "x"\n'
    )
    store = PairingStore(Settings(state_dir=tmp_path))

    message = store.consume_firstboot(())

    assert "lacks a valid" in message
    assert not (tmp_path / "firstboot.toml").exists()
    assert store.load()[0] is None
