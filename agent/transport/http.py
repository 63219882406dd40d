"""Status and snapshot requests, each answer turned into one typed outcome.

This is the only module that speaks HTTP to the school server. Every row of the
protocol's status and snapshot tables maps to an outcome class or to one of the
agent's errors; httpx errors never leave this module untranslated.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from agent import __version__
from agent.clock import ServerClock
from agent.errors import RejectedError, Rejection, TransientError
from agent.redact import scrub
from agent.store import is_snapshot_shaped

# The server's own limits are 1 snapshot a second and a burst of 3; staying at
# or under 1/s and 40/min keeps a screen clear of 429s and LOOP placeholders.
SNAPSHOT_MIN_SPACING_S = 1.0
SNAPSHOT_MAX_PER_MINUTE = 40
BUILDING_RETRY_S = 3.0
_NOT_DATA_CACHE = frozenset({"QUEUED", "BYPASS", "ERROR", "LOOP"})
_SNIPPET = 120


@dataclass(frozen=True)
class StatusUnchanged:
    """304: the applied revision is current."""

    revision: int | None


@dataclass(frozen=True)
class StatusChanged:
    """``fetch_required``: fetch the snapshot; ``reload`` asks for a full reload."""

    revision: int | None
    reload: bool = False


@dataclass(frozen=True)
class StatusIdle:
    """An older server's ``fetch_required: false``: nothing to do."""


StatusOutcome = StatusUnchanged | StatusChanged | StatusIdle


@dataclass(frozen=True)
class SnapshotFresh:
    """A snapshot body that is real data (it may still be stale; see ``is_stale``)."""

    body: dict[str, Any]
    etag: str | None
    revision: int | None
    cache: str | None
    is_stale: bool


@dataclass(frozen=True)
class SnapshotNotModified:
    """304 to our ``If-None-Match``: what we show is what the server has."""

    revision: int | None


@dataclass(frozen=True)
class SnapshotPlaceholder:
    """A snapshot-shaped answer that is not data (BUILDING, config, LOOP …)."""

    kind: str
    cache: str | None
    retry_after_s: float


SnapshotOutcome = SnapshotFresh | SnapshotNotModified | SnapshotPlaceholder


def system_tls() -> ssl.SSLContext:
    """Verify TLS against the operating system's trust store.

    Schools that inspect TLS install their CA with update-ca-certificates; the
    certificate bundle that ships with Python packages would not know it.
    """
    return ssl.create_default_context()


class RateGate:
    """Spaces snapshot requests: at most one a second and 40 a minute.

    ``wait`` sleeps until a request is allowed and records it; it never refuses.
    """

    def __init__(
        self,
        *,
        spacing_s: float = SNAPSHOT_MIN_SPACING_S,
        per_minute: int = SNAPSHOT_MAX_PER_MINUTE,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._spacing_s = spacing_s
        self._per_minute = per_minute
        self._monotonic = monotonic
        self._sleep = sleep
        self._sent: deque[float] = deque()
        self._lock = asyncio.Lock()

    def delay(self) -> float:
        """Seconds until the next request would be allowed."""
        now = self._monotonic()
        while self._sent and now - self._sent[0] >= 60.0:
            self._sent.popleft()
        waits = [0.0]
        if self._sent:
            waits.append(self._sent[-1] + self._spacing_s - now)
        if len(self._sent) >= self._per_minute:
            waits.append(self._sent[-self._per_minute] + 60.0 - now)
        return max(waits)

    async def wait(self) -> None:
        async with self._lock:
            pause = self.delay()
            if pause > 0:
                await self._sleep(pause)
            self._sent.append(self._monotonic())


class ServerApi:
    """Talks to one school server for one screen (token + device key).

    Each call has the client's timeout; a timeout or connection failure raises
    :class:`TransientError`. Cancellation propagates and leaves nothing open.
    """

    def __init__(
        self,
        server_url: str,
        token: str,
        device_key: str,
        *,
        timeout_s: float = 10.0,
        clock: ServerClock | None = None,
        gate: RateGate | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.server_url = server_url.rstrip("/")
        self._token = token
        self._device_key = device_key
        self.clock = clock or ServerClock()
        self._gate = gate or RateGate()
        self._client = httpx.AsyncClient(
            base_url=self.server_url,
            timeout=httpx.Timeout(timeout_s),
            headers={
                "Accept": "application/json",
                "User-Agent": f"kiosk-agent/{__version__}",
                "X-Display-Device": device_key,
            },
            follow_redirects=False,
            verify=system_tls(),
            transport=transport,
        )

    async def __aenter__(self) -> ServerApi:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()

    async def status(self, applied_revision: int | None) -> StatusOutcome:
        """Ask whether the snapshot changed since ``applied_revision``."""
        params = {"dk": self._device_key}
        if applied_revision is not None:
            params["v"] = str(applied_revision)
        response = await self._get(f"/api/display/status/{self._path_token}/", params)
        if response.status_code == 304:
            return StatusUnchanged(_int_header(response, "X-Schedule-Revision"))
        body = self._json_object(response, expect="status")
        fetch = body.get("fetch_required")
        if not isinstance(fetch, bool):
            raise TransientError("status answer has no fetch_required flag")
        revision = _as_int(body.get("schedule_revision"))
        reload = body.get("reload") is True
        if fetch or reload:
            return StatusChanged(revision, reload=reload)
        return StatusIdle()

    async def snapshot(self, etag: str | None) -> SnapshotOutcome:
        """Fetch the snapshot, conditional on ``etag``; spaced by the rate gate."""
        await self._gate.wait()
        headers = {"If-None-Match": etag} if etag else {}
        response = await self._get(
            f"/api/display/snapshot/{self._path_token}/",
            {"dk": self._device_key},
            headers,
        )
        if response.status_code == 304:
            return SnapshotNotModified(_int_header(response, "X-Revision"))
        body = self._json_object(response, expect="snapshot")
        if not is_snapshot_shaped(body):
            raise TransientError("snapshot answer is JSON but not a snapshot")
        return _classify_snapshot(body, response)

    @property
    def _path_token(self) -> str:
        return quote(self._token, safe="")

    async def _get(
        self,
        path: str,
        params: dict[str, str],
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        """One GET; errors that are not an answer become TransientError."""
        sent_ms = time.time() * 1000.0
        try:
            response = await self._client.get(path, params=params, headers=headers)
        except httpx.TimeoutException as exc:
            raise TransientError(f"timed out: {type(exc).__name__}") from exc
        except httpx.HTTPError as exc:
            raise TransientError(f"{type(exc).__name__}: {scrub(str(exc))}") from exc
        self._observe_clock(response, sent_ms)
        self._raise_for_error(response)
        return response

    def _observe_clock(self, response: httpx.Response, sent_ms: float) -> None:
        server_ms = _float_header(response, "X-Server-Time-MS")
        if server_ms is not None:
            self.clock.observe(server_ms, sent_ms, time.time() * 1000.0)

    def _raise_for_error(self, response: httpx.Response) -> None:
        code = response.status_code
        if code in (200, 304):
            return
        if code == 403:
            rejection = _rejection(response)
            if rejection is not None:
                raise RejectedError(rejection, _server_message(response, rejection))
            raise TransientError(f"403 that is not the server's: {_snippet(response)}")
        if code == 429:
            raise TransientError(
                "rate limited by the server",
                retry_after_s=_retry_after(response),
            )
        if 300 <= code < 400:
            where = scrub(response.headers.get("Location", "?"))
            raise TransientError(f"redirected to {where} (captive portal or proxy?)")
        if code >= 500:
            raise TransientError(
                f"server error {code}", retry_after_s=_retry_after(response)
            )
        raise TransientError(f"unexpected answer {code}: {_snippet(response)}")

    def _json_object(self, response: httpx.Response, *, expect: str) -> dict[str, Any]:
        try:
            body = response.json()
        except (ValueError, UnicodeDecodeError) as exc:
            kind = response.headers.get("Content-Type", "?").split(";")[0]
            raise TransientError(
                f"{expect} answer is not JSON ({kind}); captive portal or proxy?"
            ) from exc
        if not isinstance(body, dict):
            raise TransientError(f"{expect} answer is not a JSON object")
        return body


def _classify_snapshot(
    body: dict[str, Any], response: httpx.Response
) -> SnapshotOutcome:
    meta = body["meta"]
    state_type = body["state"].get("type")
    cache = response.headers.get("X-Snapshot-Cache") or _str(meta.get("cache"))
    cache = cache.upper() if cache else None
    if state_type == "BUILDING" or cache == "QUEUED":
        return SnapshotPlaceholder("BUILDING", cache, BUILDING_RETRY_S)
    if state_type == "config" or cache in _NOT_DATA_CACHE:
        kind = "config" if state_type == "config" else str(cache)
        return SnapshotPlaceholder(kind, cache, BUILDING_RETRY_S)
    revision = _as_int(meta.get("schedule_revision"))
    if revision is None:
        revision = _int_header(response, "X-Revision")
    return SnapshotFresh(
        body=body,
        etag=response.headers.get("ETag"),
        revision=revision,
        cache=cache,
        is_stale=meta.get("is_stale") is True or cache == "STALE",
    )


def _rejection(response: httpx.Response) -> Rejection | None:
    """Which permanent refusal a 403 is, or None if it is not the server's."""
    try:
        body = response.json()
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(body, dict):
        return None
    detail = body.get("detail")
    if detail == "screen_bound":
        return Rejection.SCREEN_BOUND
    if detail == "device_required":
        return Rejection.DEVICE_REQUIRED
    if detail == "access_denied" or "error" in body or is_snapshot_shaped(body):
        return Rejection.TOKEN_INVALID
    return None


def _server_message(response: httpx.Response, rejection: Rejection) -> str:
    try:
        body = response.json()
    except ValueError:
        body = {}
    text = body.get("message") or body.get("error") or body.get("detail")
    return scrub(str(text)) if text else rejection.value


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        # An HTTP date is allowed too; a minute is a fair reading of "later".
        return 60.0


def _snippet(response: httpx.Response) -> str:
    text = response.text[:_SNIPPET].replace("\n", " ")
    return scrub(text) or "(empty body)"


def _int_header(response: httpx.Response, name: str) -> int | None:
    return _as_int(response.headers.get(name))


def _float_header(response: httpx.Response, name: str) -> float | None:
    value = response.headers.get(name)
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _as_int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            return None
    return None


def _str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def describe(error: BaseException) -> str:
    """A one-line, token-free description of a failure for logs and status."""
    text = str(error) or type(error).__name__
    return scrub(json.dumps(text, ensure_ascii=False)[1:-1])
