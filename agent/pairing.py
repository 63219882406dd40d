"""Pairing: which server and token this screen uses, and how a person sets them.

``pair`` accepts what a school's staff actually have in hand: the bare token, a
display URL with ``?token=``, or a short-code page ``/s/CODE/`` whose HTML
carries the token. The token is stored 0600 in the state directory.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tomllib
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx

from agent import __version__
from agent.config import Settings, normalize_token
from agent.errors import PairingError
from agent.fsutil import atomic_write, ensure_private_dir
from agent.transport.http import system_tls

SERVER_FILE = "server_url"
FIRSTBOOT_FILE = "firstboot.toml"
NOT_PAIRED = "This screen is not paired yet."
# Where an image builder or IT person drops server and token before first boot.
# Under systemd a root helper moves it into the state directory first, since the
# boot partition is not the agent's to change.
BOOT_FILES = (Path("/boot/firmware/kiosk-agent.toml"), Path("/boot/kiosk-agent.toml"))
SHORT_CODE_RE = re.compile(r"[23456789ABCDEFGHJKLMNPQRSTUVWXYZ]{6}")


@dataclass(frozen=True)
class Pairing:
    server_url: str
    token: str

    @property
    def owner(self) -> str:
        """Names the token in the snapshot cache without storing it.

        Only the token: the same screen reached by a new server address (a
        move to https, another host name) keeps its cache.
        """
        return hashlib.sha256(self.token.encode()).hexdigest()[:16]


class PairingStore:
    """Reads and writes the token (and the server, if the config has none)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._token_path = settings.token_path
        self._server_path = settings.state_dir / SERVER_FILE

    def load(self) -> tuple[Pairing | None, str]:
        """The pairing, or None and a sentence saying what is missing."""
        server = self._settings.server_url or self._read(self._server_path)
        if self._settings.token is not None:
            token: str | None = self._settings.token.get_secret_value()
        else:
            raw = self._read(self._token_path)
            if raw is None:
                return None, NOT_PAIRED
            token = normalize_token(raw)
            if token is None:
                return None, (
                    f"The token file {self._token_path} does not hold a valid "
                    "token; pair the screen again."
                )
        if not server:
            return None, "No server is configured (server_url)."
        assert token is not None
        return Pairing(server.rstrip("/"), token), ""

    def save(self, pairing: Pairing) -> None:
        """Store the token (0600) and the server it was checked against.

        A ``server_url`` in the config still wins over the stored one.
        """
        ensure_private_dir(self._token_path.parent)
        atomic_write(self._token_path, (pairing.token + "\n").encode(), mode=0o600)
        ensure_private_dir(self._server_path.parent)
        atomic_write(
            self._server_path, (pairing.server_url + "\n").encode(), mode=0o600
        )

    def consume_firstboot(self, boot_files: tuple[Path, ...] = BOOT_FILES) -> str:
        """Pair from a first-boot file, once; returns what happened, or "".

        The file is deleted after reading, valid or not, so a token never stays
        on the world-readable boot partition or is applied twice. A boot
        partition file the agent cannot delete is left alone for the root helper.
        """
        candidates = [self._settings.state_dir / FIRSTBOOT_FILE]
        candidates += [p for p in boot_files if os.access(p.parent, os.W_OK)]
        for path in candidates:
            try:
                data = tomllib.loads(path.read_text("utf-8"))
            except FileNotFoundError:
                continue
            except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
                _remove(path)
                return f"first-boot file {path} was unreadable and is removed: {exc}"
            _remove(path)
            token = normalize_token(str(data.get("token", "")))
            server = data.get("server_url") or self._settings.server_url
            if token is None or not isinstance(server, str) or "://" not in server:
                return f"first-boot file {path} lacks a valid server_url and token"
            self.save(Pairing(server.rstrip("/"), token))
            return f"paired from the first-boot file {path}"
        return ""

    def forget(self) -> bool:
        """Remove the token; the device key stays. True if there was one."""
        removed = False
        for path in (self._token_path, self._server_path):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                removed = True
        return removed

    @staticmethod
    def _read(path: Path) -> str | None:
        try:
            text = path.read_text("utf-8").strip()
        except (FileNotFoundError, UnicodeDecodeError):
            return None
        except OSError:
            return None
        return text or None


def _remove(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink()


@dataclass(frozen=True)
class Reference:
    """What the user gave ``pair``, parsed: a token, or a short code to look up."""

    server_url: str | None
    token: str | None
    short_code: str | None


def parse_reference(text: str) -> Reference:
    """Parse a bare token, a ``?token=`` URL or a ``/s/CODE/`` URL.

    Raises :class:`PairingError` with a sentence a person can act on.
    """
    text = text.strip()
    token = normalize_token(text)
    if token is not None:
        return Reference(None, token, None)
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise PairingError(
            "expected a token (64 hexadecimal characters) or a display URL "
            "such as https://school.example/?token=… or https://school.example/s/CODE/"
        )
    server = f"{parts.scheme}://{parts.netloc}"
    query = parse_qs(parts.query).get("token", [])
    if query:
        value = query[0].strip()
        token = normalize_token(value)
        if token is not None:
            return Reference(server, token, None)
        if SHORT_CODE_RE.fullmatch(value.upper()):
            return Reference(server, None, value.upper())
        raise PairingError("the URL's token= value is neither a token nor a short code")
    match = re.fullmatch(r"/s/([^/]+)/?", parts.path)
    if match and SHORT_CODE_RE.fullmatch(match.group(1).upper()):
        return Reference(server, None, match.group(1).upper())
    raise PairingError(
        "the URL carries no token (?token=…) and no short code (/s/CODE/)"
    )


async def resolve_short_code(
    server_url: str, code: str, *, timeout_s: float = 10.0
) -> str:
    """Fetch ``/s/CODE/`` and read the token from its ``data-api-token``."""
    async with httpx.AsyncClient(
        timeout=timeout_s,
        headers={"User-Agent": f"kiosk-agent/{__version__}"},
        verify=system_tls(),
    ) as client:
        try:
            response = await client.get(f"{server_url}/s/{code}/")
        except httpx.HTTPError as exc:
            raise PairingError(f"could not load the short-code page: {exc}") from exc
    if response.status_code == 404:
        raise PairingError(f"the server does not know the short code {code}")
    if response.status_code != 200:
        raise PairingError(f"the short-code page answered {response.status_code}")
    finder = _TokenFinder()
    finder.feed(response.text)
    token = normalize_token(finder.token or "")
    if token is None:
        raise PairingError("the short-code page carries no display token")
    return token


class _TokenFinder(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.token: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag != "body" or self.token:
            return
        values = dict(attrs)
        self.token = values.get("data-api-token") or values.get("data-token")
